// postern account page: overview (full name), addresses and their
// destinations, password, sessions, sign-in attempts, sign out.
// Each section loads itself and reloads after its own actions; every API
// call goes through postern.api, so an ended session brings up the sign-in
// form and the action is retried after sign-in.
'use strict'

;(() => {
	const { h, show, api, signOut, guard, fmtTime, table, statusLine, strength } = postern

	const fmtBytes = (n) => {
		if (n < 1024) return n + ' bytes'
		const units = ['KiB', 'MiB', 'GiB', 'TiB']
		let i = -1
		do { n /= 1024; i++ } while (n >= 1024 && i < units.length - 1)
		return n.toFixed(1) + ' ' + units[i]
	}

	// Section: overview with the editable full name.
	const overview = (acc) => {
		const status = statusLine('overview-status')
		const name = h('input#full-name', { type: 'text', name: 'fullname', autocomplete: 'name', value: acc.FullName, maxlength: 255 })
		const form = h('form#full-name-form', {
			onsubmit: guard(status, async (ev) => {
				ev.preventDefault()
				await api('AccountSaveFullName', name.value)
				status.textContent = 'Full name saved.'
			}),
		},
		h('label', { for: 'full-name' }, 'Full name'),
		h('div.row', name, h('button#full-name-save', { type: 'submit' }, 'Save')),
		)
		return h('section#overview', { 'aria-labelledby': 'overview-h' },
			h('h2#overview-h', 'Overview'),
			form,
			status,
			h('dl',
				h('dt', 'Login addresses'), h('dd', h('ul#addresses', acc.Addresses.map(a => h('li', a)))),
				h('dt', 'Mail stored'), h('dd#storage-used', fmtBytes(acc.StorageUsed || 0)),
			),
		)
	}

	// Section: one destination per login address: default mailbox, full
	// name for mail from that address, and rules (header contains → mailbox).
	const destinations = (acc) => {
		const sec = h('section#destinations', { 'aria-labelledby': 'destinations-h' })
		const render = (acc) => {
			const blocks = acc.Addresses.map((addr, i) => {
				const dest = acc.Destinations[addr] || { FullName: '', Mailbox: 'Inbox', Rules: [] }
				const status = statusLine('dest-status-' + i)
				const save = async (newDest) => {
					await api('DestinationSave', addr, dest, newDest)
					const fresh = await api('Account')
					render(fresh)
					const s = document.getElementById('dest-status-' + i)
					if (s) s.textContent = 'Saved.'
				}
				const mailbox = h('input', { id: 'dest-mailbox-' + i, type: 'text', value: dest.Mailbox, required: true, maxlength: 255 })
				const fullName = h('input', { id: 'dest-fullname-' + i, type: 'text', value: dest.FullName, maxlength: 255, placeholder: 'the account\'s full name' })
				const form = h('form.dest', {
					onsubmit: guard(status, async (ev) => {
						ev.preventDefault()
						await save({ FullName: fullName.value, Mailbox: mailbox.value, Rules: dest.Rules })
					}),
				},
				h('p', h('label', { for: 'dest-mailbox-' + i }, 'Deliver to mailbox'), mailbox),
				h('p', h('label', { for: 'dest-fullname-' + i }, 'Name on mail from this address'), fullName),
				h('p', h('button', { type: 'submit' }, 'Save destination')),
				)
				const rules = table('table.rules', ['When header', 'contains', 'deliver to', ''],
					dest.Rules.map((r, j) => [r.Header, r.Contains, r.Mailbox,
						h('button', {
							type: 'button', 'aria-label': 'Remove rule ' + (j + 1),
							onclick: guard(status, () => save({ ...dest, Rules: dest.Rules.filter((_, k) => k !== j) })),
						}, 'Remove')]),
					'No rules: all mail goes to the mailbox above.')
				const rh = h('input', { id: 'rule-header-' + i, type: 'text', required: true, placeholder: 'List-Id', maxlength: 255 })
				const rc = h('input', { id: 'rule-contains-' + i, type: 'text', required: true, maxlength: 255 })
				const rm = h('input', { id: 'rule-mailbox-' + i, type: 'text', required: true, maxlength: 255 })
				const addRule = h('form.add-rule', {
					onsubmit: guard(status, async (ev) => {
						ev.preventDefault()
						await save({ ...dest, Rules: [...dest.Rules, { Header: rh.value, Contains: rc.value, Mailbox: rm.value }] })
					}),
				},
				h('div.fields',
					h('p', h('label', { for: 'rule-header-' + i }, 'Header'), rh),
					h('p', h('label', { for: 'rule-contains-' + i }, 'Contains'), rc),
					h('p', h('label', { for: 'rule-mailbox-' + i }, 'Mailbox'), rm),
				),
				h('p', h('button', { type: 'submit' }, 'Add rule')),
				)
				return h('div.destination', h('h3', addr), form, h('h4', 'Rules'), rules, addRule, status)
			})
			sec.replaceChildren(h('h2#destinations-h', 'Addresses and delivery'), ...blocks)
		}
		render(acc)
		return sec
	}

	// Section: password change with a generated suggestion and strength feedback.
	const password = () => {
		const status = statusLine('password-status')
		const pw = h('input#new-password', { type: 'password', name: 'new-password', autocomplete: 'new-password', minlength: 8, required: true, 'aria-describedby': 'password-strength' })
		const meter = h('meter#password-meter', { min: 0, max: 100, low: 40, high: 60, optimum: 90, value: 0, 'aria-hidden': 'true' })
		const feedback = h('span#password-strength', { 'aria-live': 'polite' })
		const update = () => {
			const s = strength(pw.value)
			meter.value = Math.min(s.bits, 100)
			feedback.textContent = s.label ? 'Strength: ' + s.label : ''
		}
		pw.addEventListener('input', update)
		const showPw = h('input#show-password', { type: 'checkbox', onchange: () => { pw.type = showPw.checked ? 'text' : 'password' } })
		const form = h('form#password-form', {
			onsubmit: guard(status, async (ev) => {
				ev.preventDefault()
				await api('SetPassword', pw.value)
				pw.value = ''
				update()
				status.textContent = 'Password changed. Your other sessions were signed out.'
				await reloadSessions()
			}),
		},
		h('p', h('label', { for: 'new-password' }, 'New password (at least 8 characters)'), pw),
		h('p.strength', meter, ' ', feedback),
		h('p.inline', showPw, h('label', { for: 'show-password' }, 'Show password')),
		h('p.buttons',
			h('button#password-generate', {
				type: 'button',
				onclick: guard(status, async () => {
					pw.value = await api('GeneratePassword')
					pw.type = 'text'
					showPw.checked = true
					update()
					status.textContent = 'Suggested a random password. Store it in your password manager before saving.'
				}),
			}, 'Suggest a password'),
			h('button#password-submit', { type: 'submit' }, 'Change password'),
		),
		)
		return h('section#password', { 'aria-labelledby': 'password-h' }, h('h2#password-h', 'Change password'), form, status)
	}

	// Section: active sessions.
	const sessionsSec = h('section#sessions', { 'aria-labelledby': 'sessions-h' })
	const sessionsStatus = statusLine('sessions-status')
	const reloadSessions = async () => {
		const list = await api('Sessions')
		const rows = list.map(s => [
			s.Current ? h('strong', 'this browser') : s.Kind === 'webmail' ? 'webmail' : 'account',
			s.LoginAddress,
			fmtTime(s.Created),
			fmtTime(s.LastUsed),
			s.LastIP || s.CreatedIP,
			h('span.agent', { title: s.LastAgent || s.CreatedAgent }, s.LastAgent || s.CreatedAgent),
			h('button.revoke', {
				type: 'button',
				'data-id': s.ID,
				'aria-label': s.Current ? 'Sign out this browser' : 'Revoke session from ' + (s.LastIP || 'unknown address'),
				onclick: guard(sessionsStatus, async () => {
					await api('SessionRevoke', s.ID)
					if (s.Current) { await signOut(); return }
					await reloadSessions()
					sessionsStatus.textContent = 'Session revoked.'
				}),
			}, s.Current ? 'Sign out' : 'Revoke'),
		])
		sessionsSec.replaceChildren(
			h('h2#sessions-h', 'Active sessions'),
			table('table#sessions-table', ['Session', 'Signed in as', 'Started', 'Last used', 'Address', 'Browser', ''], rows),
			h('p.buttons',
				h('button#revoke-others', {
					type: 'button',
					disabled: list.length <= 1,
					onclick: guard(sessionsStatus, async () => {
						const n = await api('SessionRevokeOthers')
						await reloadSessions()
						sessionsStatus.textContent = 'Signed out ' + n + ' other session' + (n === 1 ? '' : 's') + '.'
					}),
				}, 'Sign out everywhere else'),
				h('button#sessions-refresh', { type: 'button', onclick: guard(sessionsStatus, reloadSessions) }, 'Refresh'),
			),
			sessionsStatus,
		)
	}

	// Section: recent sign-in attempts.
	const attemptsSec = h('section#attempts', { 'aria-labelledby': 'attempts-h' })
	const attemptsStatus = statusLine('attempts-status')
	const resultText = { ok: 'signed in', badpassword: 'wrong password', disabled: 'refused: login disabled' }
	const reloadAttempts = async () => {
		const list = await api('LoginAttempts', 20)
		attemptsSec.replaceChildren(
			h('h2#attempts-h', 'Recent sign-in attempts'),
			table('table#attempts-table', ['Time', 'Result', 'Interface', 'Address', 'Browser'],
				list.map(a => [fmtTime(a.Time), h('span', { class: 'result-' + a.Result }, resultText[a.Result] || a.Result), a.Kind === 'webmail' ? 'webmail' : 'account', a.IP, h('span.agent', { title: a.UserAgent }, a.UserAgent)])),
			h('p.buttons', h('button#attempts-refresh', { type: 'button', onclick: guard(attemptsStatus, reloadAttempts) }, 'Refresh')),
			attemptsStatus,
		)
	}

	const render = async () => {
		const acc = await api('Account')
		const status = statusLine('status')
		show(
			h('header',
				h('h1', 'Account ', h('span#account-name', acc.Name)),
				h('nav', { 'aria-label': 'Sections' },
					h('a', { href: '#password' }, 'Password'), ' ',
					h('a', { href: '#sessions' }, 'Sessions'), ' ',
					h('a', { href: '#attempts' }, 'Sign-ins'),
				),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			overview(acc),
			password(),
			sessionsSec,
			attemptsSec,
			destinations(acc),
		)
		await Promise.all([reloadSessions(), reloadAttempts()])
	}

	postern.start(render)
})()
