// postern admin page: accounts (list, add, remove with confirmation,
// addresses, password, disable/enable with reason, sessions, sign-in
// attempts), rate-limited clients, the admin's own sign-in attempts.
'use strict'

;(() => {
	const { h, show, api, signOut, guard, fmtTime, table, statusLine } = postern

	const resultText = { ok: 'signed in', badpassword: 'wrong password', disabled: 'refused: login disabled' }
	const attemptRows = (list, withAddress) => list.map(a => [
		fmtTime(a.Time),
		h('span', { class: 'result-' + a.Result }, resultText[a.Result] || a.Result),
		...(withAddress ? [a.Kind, a.LoginAddress] : []),
		a.IP,
		h('span.agent', { title: a.UserAgent }, a.UserAgent),
	])

	// Section: the accounts list and the add form.
	const accountsSec = h('section#accounts-section', { 'aria-labelledby': 'accounts-h' })
	const accountsStatus = statusLine('accounts-status')
	const reloadAccounts = async () => {
		const accounts = await api('Accounts')
		const name = h('input#new-account-name', { type: 'text', required: true, autocomplete: 'off', autocapitalize: 'none', maxlength: 255 })
		const addr = h('input#new-account-address', { type: 'text', required: true, inputmode: 'email', autocomplete: 'off', autocapitalize: 'none', maxlength: 255 })
		const add = h('form#account-add', {
			onsubmit: guard(accountsStatus, async (ev) => {
				ev.preventDefault()
				await api('AccountAdd', name.value, addr.value)
				const added = name.value
				await reloadAccounts()
				accountsStatus.textContent = 'Account ' + added + ' added. Set a password so it can sign in.'
				await selectAccount(added, true)
			}),
		},
		h('h3', 'Add an account'),
		h('div.fields',
			h('p', h('label', { for: 'new-account-name' }, 'Account name'), name),
			h('p', h('label', { for: 'new-account-address' }, 'Login address'), addr),
		),
		h('p', h('button#account-add-submit', { type: 'submit' }, 'Add account')),
		)
		accountsSec.replaceChildren(
			h('h2#accounts-h', { tabindex: '-1' }, 'Accounts'),
			table('table#accounts', ['Account', 'Login'], accounts.map(a => [
				h('button.link.account-open', { type: 'button', 'data-name': a.Name, onclick: guard(accountsStatus, () => selectAccount(a.Name, true)) }, a.Name),
				a.LoginDisabled ? h('span.disabled', 'disabled: ' + a.LoginDisabled) : 'enabled',
			]), 'No accounts yet.'),
			accountsStatus,
			add,
		)
	}

	// Section: one account in detail.
	const detailSec = h('section#account-detail', { 'aria-labelledby': 'detail-h', hidden: true })
	const selectAccount = async (name, focus) => {
		const [acc, sessions, attempts] = await Promise.all([
			api('Account', name), api('AccountSessions', name), api('LoginAttempts', name, 20),
		])
		const status = statusLine('detail-status')
		const again = async (msg) => {
			await selectAccount(name)
			const s = document.getElementById('detail-status')
			if (s) s.textContent = msg
		}

		// addresses
		const newAddr = h('input#address-new', { type: 'text', required: true, inputmode: 'email', autocapitalize: 'none', maxlength: 255 })
		const addresses = h('div#detail-addresses',
			h('h3', 'Login addresses'),
			h('ul#detail-address-list', acc.Addresses.map(a => h('li', a, ' ',
				h('button.address-remove', {
					type: 'button', 'aria-label': 'Remove address ' + a, disabled: acc.Addresses.length <= 1,
					onclick: guard(status, async () => { await api('AddressRemove', a); await again('Address ' + a + ' removed.') }),
				}, 'Remove')))),
			h('form#address-add', {
				onsubmit: guard(status, async (ev) => {
					ev.preventDefault()
					await api('AddressAdd', newAddr.value, name)
					await again('Address ' + newAddr.value + ' added.')
				}),
			},
			h('label', { for: 'address-new' }, 'Add a login address'),
			h('div.row', newAddr, h('button', { type: 'submit' }, 'Add address')),
			),
		)

		// password
		const pw = h('input#account-password', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' })
		const password = h('form#account-password-form', {
			onsubmit: guard(status, async (ev) => {
				ev.preventDefault()
				await api('SetPassword', name, pw.value)
				pw.value = ''
				await again('Password set. All sessions of ' + name + ' were signed out.')
			}),
		},
		h('h3', 'Password'),
		h('label', { for: 'account-password' }, 'New password (at least 8 characters)'),
		h('div.row', pw, h('button#account-password-submit', { type: 'submit' }, 'Set password')),
		)

		// login enabled / disabled
		const reason = h('input#disable-reason', { type: 'text', required: true, maxlength: 255, value: acc.LoginDisabled })
		const login = acc.LoginDisabled
			? h('div#login-state',
				h('h3', 'Login'),
				h('p', 'Login is ', h('strong#login-disabled', 'disabled'), ': ', acc.LoginDisabled),
				h('p', h('button#account-enable', {
					type: 'button',
					onclick: guard(status, async () => { await api('AccountLoginDisabledSave', name, ''); await reloadAccounts(); await again('Login enabled.') }),
				}, 'Enable login')))
			: h('form#login-state', {
				onsubmit: guard(status, async (ev) => {
					ev.preventDefault()
					await api('AccountLoginDisabledSave', name, reason.value)
					await reloadAccounts()
					await again('Login disabled. Existing sessions are refused until login is enabled again.')
				}),
			},
			h('h3', 'Login'),
			h('p', 'Login is enabled.'),
			h('label', { for: 'disable-reason' }, 'Reason shown to the user'),
			h('div.row', reason, h('button#account-disable', { type: 'submit' }, 'Disable login')),
			)

		// sessions
		const sessionsBlock = h('div#detail-sessions',
			h('h3', 'Sessions'),
			table('table#account-sessions', ['Interface', 'Signed in as', 'Started', 'Last used', 'Address', 'Browser'],
				sessions.map(s => [s.Kind, s.LoginAddress, fmtTime(s.Created), fmtTime(s.LastUsed), s.LastIP || s.CreatedIP, h('span.agent', { title: s.LastAgent }, s.LastAgent)])),
			h('p', h('button#account-sessions-revoke', {
				type: 'button', disabled: sessions.length === 0,
				onclick: guard(status, async () => {
					const n = await api('AccountSessionsRevoke', name)
					await again('Revoked ' + n + ' session' + (n === 1 ? '' : 's') + '.')
				}),
			}, 'Revoke all sessions')),
		)

		// attempts
		const attemptsBlock = h('div#detail-attempts',
			h('h3', 'Recent sign-in attempts'),
			table('table#account-attempts', ['Time', 'Result', 'Interface', 'Address', 'IP', 'Browser'], attemptRows(attempts, true)),
		)

		// removal, with an in-page confirmation
		const confirmBox = h('div#remove-confirm', { hidden: true, role: 'alertdialog', 'aria-labelledby': 'remove-q' },
			h('p#remove-q', 'Remove account ' + name + ' with its addresses, sessions, sign-in history and all its mail? This cannot be undone.'),
			h('p.buttons',
				h('button#account-remove-confirm.danger', {
					type: 'button',
					onclick: guard(status, async () => {
						await api('AccountRemove', name)
						detailSec.hidden = true
						detailSec.replaceChildren()
						await reloadAccounts()
						accountsStatus.textContent = 'Account ' + name + ' removed.'
						document.querySelector('#accounts-section h2').focus()
					}),
				}, 'Yes, remove ' + name),
				h('button#account-remove-cancel', { type: 'button', onclick: () => { confirmBox.hidden = true; removeBtn.focus() } }, 'Cancel'),
			),
		)
		const removeBtn = h('button#account-remove.danger', { type: 'button', onclick: () => { confirmBox.hidden = false; confirmBox.querySelector('#account-remove-cancel').focus() } }, 'Remove account…')

		detailSec.replaceChildren(
			h('h2#detail-h', { tabindex: '-1' }, 'Account ', h('span#detail-name', name)),
			status,
			...(acc.FullName ? [h('p', 'Full name: ', acc.FullName)] : []),
			addresses, password, login, sessionsBlock, attemptsBlock,
			h('div#detail-remove', h('h3', 'Remove'), h('p', removeBtn), confirmBox),
		)
		detailSec.hidden = false
		if (focus) document.getElementById('detail-h').focus()
	}

	// Section: rate-limited clients.
	const limitsSec = h('section#ratelimits', { 'aria-labelledby': 'ratelimits-h' })
	const limitsStatus = statusLine('ratelimits-status')
	const reloadLimits = async () => {
		const list = await api('RateLimits')
		const ipOf = (prefix) => prefix.replace(/\/\d+$/, '')
		limitsSec.replaceChildren(
			h('h2#ratelimits-h', 'Rate-limited clients'),
			table('table#ratelimits-table', ['Network', 'Window', 'Failures', 'Clears in', ''], list.map(l => [
				l.Prefix,
				l.WindowSeconds >= 86400 ? '24 hours' : l.WindowSeconds + ' s',
				l.Count + ' / ' + l.Limit,
				Math.ceil(l.ClearsInMs / 1000) + ' s',
				h('button.ratelimit-reset', {
					type: 'button', 'aria-label': 'Reset ' + l.Prefix,
					onclick: guard(limitsStatus, async () => {
						await api('RateLimitReset', ipOf(l.Prefix))
						await reloadLimits()
						limitsStatus.textContent = 'Reset ' + l.Prefix + '.'
					}),
				}, 'Reset'),
			]), 'No client is rate limited.'),
			h('p', h('button#ratelimits-refresh', { type: 'button', onclick: guard(limitsStatus, reloadLimits) }, 'Refresh')),
			limitsStatus,
		)
	}

	// Section: the admin's own sign-in attempts.
	const adminAttemptsSec = h('section#admin-attempts', { 'aria-labelledby': 'admin-attempts-h' })
	const reloadAdminAttempts = async () => {
		const list = await api('AdminLoginAttempts', 20)
		adminAttemptsSec.replaceChildren(
			h('h2#admin-attempts-h', 'Admin sign-in attempts'),
			table('table#admin-attempts-table', ['Time', 'Result', 'IP', 'Browser'], attemptRows(list, false)),
		)
	}

	const render = async () => {
		const status = statusLine('status')
		show(
			h('header',
				h('h1', 'Administration'),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			accountsSec,
			detailSec,
			limitsSec,
			adminAttemptsSec,
		)
		detailSec.hidden = true
		await Promise.all([reloadAccounts(), reloadLimits(), reloadAdminAttempts()])
	}

	postern.start(render)
})()
