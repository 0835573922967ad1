// postern account page: overview, password, sign out.
'use strict'

;(() => {
	const { h, show, api, signOut, guard } = postern

	const render = async () => {
		const acc = await api('Account')
		const status = h('p.status#status', { role: 'status' })
		const pw = h('input#new-password', { type: 'password', autocomplete: 'new-password', minlength: 8, required: true })
		const pwForm = h('form#password-form', {
			onsubmit: guard(status, async (ev) => {
				ev.preventDefault()
				await api('SetPassword', pw.value)
				pw.value = ''
				status.textContent = 'Password changed. Your other sessions were signed out.'
			}),
		},
		h('h2', 'Change password'),
		h('p', h('label', { for: 'new-password' }, 'New password (at least 8 characters)'), pw),
		h('p', h('button#password-submit', { type: 'submit' }, 'Change password')),
		)
		show(
			h('header',
				h('h1', 'Account ', h('span#account-name', acc.Name)),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			h('section#overview',
				h('h2', 'Overview'),
				h('dl',
					h('dt', 'Full name'), h('dd#full-name', acc.FullName || '(not set)'),
					h('dt', 'Login addresses'), h('dd', h('ul#addresses', (acc.Addresses || []).map(a => h('li', a)))),
				),
			),
			h('section', pwForm),
		)
	}

	const start = async () => {
		try {
			await render()
		} catch (e) {
			show(h('p.error', 'Error: ' + e.message))
		}
	}
	window.addEventListener('load', start)
})()
