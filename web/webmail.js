// postern webmail page: sign-in and sign-out (the mailbox view arrives with
// the mail store).
'use strict'

;(() => {
	const { h, show, api, signOut, guard } = postern

	const render = async () => {
		const version = await api('Version')
		const status = h('p.status#status', { role: 'status' })
		show(
			h('header',
				h('h1', 'Webmail'),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			h('p#webmail-ready', 'Signed in (postern ' + version + ').'),
		)
	}

	postern.start(render)
})()
