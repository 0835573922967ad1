// postern account page: overview (full name), password, mail import with
// live progress, export downloads, sessions, sign-in attempts, addresses
// and their destinations, sign out.
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

	// Section: mail import. The archive goes up with XMLHttpRequest (for
	// upload progress); the answer's token is kept in localStorage, so a
	// reload reattaches to the progress stream (GET importprogress, SSE).
	const importKey = 'webaccountimporttoken'
	const importSec = h('section#import', { 'aria-labelledby': 'import-h' })
	const importStatus = statusLine('import-status')
	let importSource = null
	// While the page unloads the browser closes the stream (an error event
	// with the stream closed): that must not forget the import.
	let leaving = false
	window.addEventListener('pagehide', () => { leaving = true })
	window.addEventListener('beforeunload', () => { leaving = true })

	const upload = (file, skipPrefix) => new Promise((resolve, reject) => {
		const fd = new FormData()
		fd.append('file', file)
		if (skipPrefix) fd.append('skipMailboxPrefix', skipPrefix)
		const xhr = new XMLHttpRequest()
		xhr.open('POST', 'import')
		xhr.setRequestHeader('x-mox-csrf', localStorage.getItem('webaccountcsrftoken') || '')
		xhr.upload.onprogress = (e) => {
			if (e.lengthComputable) importStatus.textContent = 'Uploading… ' + Math.floor(100 * e.loaded / e.total) + '%'
		}
		xhr.onerror = () => reject(new postern.ApiError('sherpa:connection', 'upload failed: cannot reach the server'))
		xhr.onload = () => {
			if (xhr.status === 403) {
				// the session check refused: a text answer "403 - forbidden - <reason>"
				const reason = xhr.responseText.replace(/^403 - forbidden - /, '').trim()
				reject(new postern.ApiError(/missing|no session/.test(reason) ? 'user:noAuth' : 'user:badAuth', reason))
				return
			}
			let body
			try { body = JSON.parse(xhr.responseText) } catch (e) { reject(new postern.ApiError('server:error', xhr.responseText.trim() || 'HTTP ' + xhr.status)); return }
			if (body.error) reject(new postern.ApiError(body.error.code, body.error.message))
			else resolve(body.Token || (body.result && body.result.Token))
		}
		xhr.send(fd)
	})

	const startImport = async (file, skipPrefix) => {
		for (;;) {
			try {
				return await upload(file, skipPrefix)
			} catch (e) {
				if (e.code !== 'user:noAuth' && e.code !== 'user:badAuth') throw e
				await postern.signIn(e.code === 'user:badAuth' ? e.message : '')
			}
		}
	}

	const importForm = () => {
		let chosen = null
		const file = h('input#import-file', { type: 'file', name: 'file', accept: '.zip,.tgz,.tar.gz,application/zip,application/gzip' })
		const chosenText = h('span#import-chosen')
		const choose = (f) => { chosen = f; chosenText.textContent = f ? 'Selected: ' + f.name + ' (' + fmtBytes(f.size) + ')' : '' }
		file.addEventListener('change', () => choose(file.files[0] || null))
		const drop = h('div#import-drop', {
			ondragover: (e) => { e.preventDefault(); drop.classList.add('over') },
			ondragleave: () => drop.classList.remove('over'),
			ondrop: (e) => {
				e.preventDefault()
				drop.classList.remove('over')
				if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0])
			},
		},
		h('label', { for: 'import-file' }, 'Archive (.zip or .tgz) with mbox files and/or maildirs'),
		file,
		h('p.hint', 'or drop the file here'),
		chosenText,
		)
		const skip = h('input#import-skip', { type: 'text', maxlength: 1024, autocapitalize: 'none', placeholder: 'e.g. backup/home' })
		return h('form#import-form', {
			onsubmit: guard(importStatus, async (ev) => {
				ev.preventDefault()
				if (!chosen) throw new Error('Choose an archive first.')
				const token = await startImport(chosen, skip.value)
				importStatus.textContent = ''
				localStorage.setItem(importKey, token)
				attachImport(token)
			}),
		},
		drop,
		h('p', h('label', { for: 'import-skip' }, 'Leave out this folder prefix (optional)'), skip),
		h('p', h('button#import-submit', { type: 'submit' }, 'Import')),
		)
	}

	const showImportForm = () => {
		importSec.replaceChildren(h('h2#import-h', 'Import mail'), importForm(), importStatus)
	}

	// The progress view of one import, fed by the event stream.
	const attachImport = (token) => {
		if (importSource) importSource.close()
		const counts = new Map()
		const countsBody = h('tbody')
		const renderCounts = () => countsBody.replaceChildren(...[...counts].map(([m, n]) => h('tr', h('td', m), h('td', String(n)))))
		const step = h('p#import-step', 'Starting…')
		const state = h('p#import-state', { role: 'status', 'aria-live': 'polite' }, 'Importing…')
		const problems = h('ul#import-problems')
		const again = h('button#import-again', { type: 'button', hidden: true, onclick: showImportForm }, 'Import another archive')
		const abort = h('button#import-abort.danger', {
			type: 'button',
			onclick: guard(importStatus, async () => {
				abort.disabled = true
				try { await api('ImportAbort', token) } catch (e) { abort.disabled = false; throw e }
				state.textContent = 'Aborting…'
			}),
		}, 'Abort import')
		importSec.replaceChildren(
			h('h2#import-h', 'Import mail'),
			step,
			h('div.scroll', h('table#import-counts', h('thead', h('tr', h('th', { scope: 'col' }, 'Mailbox'), h('th', { scope: 'col' }, 'Messages'))), countsBody)),
			h('h3', 'Problems'),
			problems,
			state,
			h('p.buttons', abort, again),
			importStatus,
		)
		const end = (text) => {
			src.close()
			importSource = null
			localStorage.removeItem(importKey)
			state.textContent = text
			abort.hidden = true
			again.hidden = false
			step.textContent = ''
		}
		const src = new EventSource('importprogress?token=' + encodeURIComponent(token))
		importSource = src
		const data = (e) => { try { return JSON.parse(e.data) } catch (x) { return {} } }
		src.addEventListener('step', (e) => { step.textContent = data(e).Title || '' })
		src.addEventListener('count', (e) => { const d = data(e); counts.set(d.Mailbox, d.Count); renderCounts() })
		src.addEventListener('problem', (e) => { problems.append(h('li', data(e).Message || '')) })
		src.addEventListener('done', () => {
			let total = 0
			for (const n of counts.values()) total += n
			end('Done: ' + total + ' message' + (total === 1 ? '' : 's') + ' imported into ' + counts.size + ' mailbox' + (counts.size === 1 ? '' : 'es') + '.')
		})
		src.addEventListener('aborted', () => end('Aborted: nothing was imported.'))
		src.addEventListener('error', () => {
			// The server ends the stream after done/aborted (handled above).
			// A closed stream before that: the token is unknown (the import
			// ended over a minute ago) or the server went away.
			if (!leaving && src.readyState === EventSource.CLOSED && importSource === src) end('The progress of this import is no longer available; it ended more than a minute ago.')
		})
	}

	const renderImport = () => {
		const token = localStorage.getItem(importKey)
		if (token) attachImport(token)
		else showImportForm()
	}

	// Section: export, as a download. A plain form post (the browser saves
	// the attachment); the CSRF token goes in a form field.
	const exportSec = () => {
		const forms = []
		for (const format of ['mbox', 'maildir']) {
			for (const archive of ['zip', 'tgz']) {
				const csrf = h('input', { type: 'hidden', name: 'csrf' })
				forms.push(h('form.export', {
					method: 'post', action: 'export',
					onsubmit: () => { csrf.value = localStorage.getItem('webaccountcsrftoken') || '' },
				},
				csrf,
				h('input', { type: 'hidden', name: 'format', value: format }),
				h('input', { type: 'hidden', name: 'archive', value: archive }),
				h('button', { type: 'submit', id: 'export-' + format + '-' + archive }, format + ' in .' + archive),
				))
			}
		}
		return h('section#export', { 'aria-labelledby': 'export-h' },
			h('h2#export-h', 'Export mail'),
			h('p', 'Download all mailboxes as one archive:'),
			h('div.buttons', forms),
		)
	}

	const render = async () => {
		const acc = await api('Account')
		const status = statusLine('status')
		show(
			h('header',
				h('h1', 'Account ', h('span#account-name', acc.Name)),
				h('nav', { 'aria-label': 'Sections' },
					h('a', { href: '#import' }, 'Import'), ' ',
					h('a', { href: '#export' }, 'Export'), ' ',
					h('a', { href: '#password' }, 'Password'), ' ',
					h('a', { href: '#sessions' }, 'Sessions'), ' ',
					h('a', { href: '#attempts' }, 'Sign-ins'),
				),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			overview(acc),
			password(),
			importSec,
			exportSec(),
			sessionsSec,
			attemptsSec,
			destinations(acc),
		)
		renderImport()
		await Promise.all([reloadSessions(), reloadAttempts()])
	}

	postern.start(render)
})()
