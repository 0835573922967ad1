// postern admin page: accounts.
'use strict'

;(() => {
	const { h, show, api, signOut, guard } = postern

	const render = async () => {
		const accounts = await api('Accounts')
		const status = h('p.status#status', { role: 'status' })
		show(
			h('header',
				h('h1', 'Administration'),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			h('section',
				h('h2', 'Accounts'),
				h('table#accounts',
					h('thead', h('tr', h('th', { scope: 'col' }, 'Account'), h('th', { scope: 'col' }, 'Login disabled'))),
					h('tbody', accounts.map(a => h('tr', h('td', a.Name), h('td', a.LoginDisabled || '')))),
				),
			),
		)
	}

	window.addEventListener('load', async () => {
		try { await render() } catch (e) { show(h('p.error', 'Error: ' + e.message)) }
	})
})()
