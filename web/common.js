// postern: shared page code for the account, admin and webmail interfaces.
// No framework, no inline script (the Content-Security-Policy forbids it).
// Owns: the API client (CSRF token in localStorage, retry after sign-in on
// user:noAuth / user:badAuth), the sign-in form, and small DOM helpers that
// only ever set text (never innerHTML), so no server string becomes markup.
'use strict'

const postern = (() => {
	const kind = document.documentElement.dataset.kind // webaccount, webadmin, webmail
	const csrfKey = kind + 'csrftoken'
	const userKey = kind + 'user'
	const errors = []
	window.posternErrors = errors
	window.addEventListener('error', e => errors.push(String(e.message || e)))
	window.addEventListener('unhandledrejection', e => errors.push(String(e.reason && e.reason.message || e.reason)))
	document.addEventListener('securitypolicyviolation', e => errors.push('csp: ' + e.violatedDirective))

	// h('div.class#id', {attr: value, onclick: fn}, child, 'text', ...)
	const h = (spec, ...rest) => {
		const m = spec.match(/^([a-z0-9]+)((?:[.#][\w-]+)*)$/)
		const el = document.createElement(m ? m[1] : 'div')
		if (m && m[2]) {
			for (const part of m[2].match(/[.#][\w-]+/g)) {
				if (part[0] === '.') el.classList.add(part.slice(1))
				else el.id = part.slice(1)
			}
		}
		for (const x of rest) {
			if (x === null || x === undefined || x === false) continue
			if (Array.isArray(x)) el.append(...x.filter(c => c !== null && c !== undefined && c !== false))
			else if (x instanceof Node) el.append(x)
			else if (typeof x === 'object') {
				for (const [k, v] of Object.entries(x)) {
					if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
					else if (v === true) el.setAttribute(k, '')
					else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, String(v))
				}
			} else el.append(String(x))
		}
		return el
	}

	const page = () => document.getElementById('page')
	const show = (...children) => { const p = page(); p.replaceChildren(...children); p.classList.remove('loading') }

	class ApiError extends Error {
		constructor(code, message) { super(message); this.code = code }
	}

	let pendingLogin = null

	const rawCall = async (fn, params) => {
		const headers = { 'Content-Type': 'application/json' }
		const csrf = localStorage.getItem(csrfKey)
		if (csrf && fn !== 'LoginPrep' && fn !== 'Login') headers['x-mox-csrf'] = csrf
		let resp
		try {
			resp = await fetch('api/' + fn, { method: 'POST', headers, body: JSON.stringify({ params }), credentials: 'same-origin' })
		} catch (e) {
			throw new ApiError('sherpa:connection', 'cannot reach the server: ' + e.message)
		}
		if (resp.status === 429) throw new ApiError('user:error', 'too many failed sign-in attempts from your address; try again in ' + (resp.headers.get('Retry-After') || 'a few') + ' seconds')
		let body
		try { body = await resp.json() } catch (e) { throw new ApiError('sherpa:badResponse', 'bad answer from server (HTTP ' + resp.status + ')') }
		if (body && body.error) throw new ApiError(body.error.code, body.error.message)
		return body.result
	}

	// An API call. When the session is missing or no longer valid, the sign-in
	// form comes up and the call is retried once signed in.
	const api = async (fn, ...params) => {
		for (;;) {
			try {
				return await rawCall(fn, params)
			} catch (e) {
				if (e.code !== 'user:noAuth' && e.code !== 'user:badAuth') throw e
				await signIn(e.code === 'user:badAuth' ? e.message : '')
			}
		}
	}

	const signIn = (reason) => {
		if (!pendingLogin) {
			pendingLogin = new Promise(resolve => showLogin(reason, () => { pendingLogin = null; resolve() }))
		}
		return pendingLogin
	}

	const showLogin = (reason, done) => {
		localStorage.removeItem(csrfKey)
		const isAdmin = kind === 'webadmin'
		const message = h('p.message#login-message', { role: 'alert' }, reason ? humanReason(reason) : '')
		const username = isAdmin ? null : h('input#username', { name: 'username', autocomplete: 'username', required: true, type: 'text', inputmode: 'email', autocapitalize: 'none' })
		const password = h('input#password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
		const button = h('button#login-submit', { type: 'submit' }, 'Sign in')
		const form = h('form#login', {
			onsubmit: async (ev) => {
				ev.preventDefault()
				button.disabled = true
				message.textContent = ''
				try {
					const token = await rawCall('LoginPrep', [])
					const params = isAdmin ? [token, password.value] : [token, username.value, password.value]
					const csrf = await rawCall('Login', params)
					localStorage.setItem(csrfKey, csrf)
					password.value = ''
					const who = isAdmin ? 'admin' : username.value
					const before = localStorage.getItem(userKey)
					localStorage.setItem(userKey, who)
					if (before !== null && before !== who && page().dataset.rendered) {
						// someone else signed in: nothing of the old page may stay
						location.reload()
						return
					}
					box.remove()
					page().hidden = false
					done()
				} catch (e) {
					message.textContent = e.code === 'user:loginFailed' && e.message === 'invalid credentials'
						? (isAdmin ? 'Wrong password.' : 'Wrong email address or password.')
						: humanReason(e.message)
					button.disabled = false
					password.focus()
				}
			},
		},
		h('h1', document.title),
		message,
		username ? h('p', h('label', { for: 'username' }, 'Email address'), username) : null,
		h('p', h('label', { for: 'password' }, 'Password'), password),
		h('p', button),
		)
		// The form goes over the page rather than replacing it: after sign-in
		// the page is still there and the interrupted action is retried.
		const box = h('div#login-box', form)
		document.getElementById('login-box')?.remove()
		page().hidden = true
		page().before(box)
		;(username || password).focus()
	}

	const humanReason = (r) => {
		if (r === 'session expired') return 'Your session expired. Please sign in again.'
		// expired sessions are swept from memory within seconds, after which
		// the server no longer knows them: say every way a session ends
		if (r === 'unknown session token') return 'Your session ended: it expired, was signed out elsewhere, or the password changed. Please sign in again.'
		if (r.startsWith('login disabled')) return 'Your login is disabled: ' + r.replace(/^login disabled: /, '')
		return r
	}

	const signOut = async () => {
		try { await rawCall('Logout', []) } catch (e) { /* already signed out */ }
		localStorage.removeItem(csrfKey)
		localStorage.removeItem(userKey)
		const p = page()
		p.replaceChildren()
		delete p.dataset.rendered
		await signIn('')
		await run()
	}

	// The page's render function, run at load and again after a sign-out
	// and sign-in.
	let renderFn = null
	const run = async () => {
		const p = page()
		p.classList.add('loading')
		try {
			await renderFn()
			p.dataset.rendered = 'yes'
		} catch (e) {
			show(h('p.error', 'Error: ' + e.message))
		}
	}
	const start = (fn) => {
		renderFn = fn
		window.addEventListener('load', run)
	}

	// Runs fn and shows its error in a status line instead of an uncaught failure.
	const guard = (status, fn) => async (...args) => {
		status.textContent = ''
		status.classList.remove('error')
		try {
			await fn(...args)
		} catch (e) {
			status.textContent = e.message
			status.classList.add('error')
		}
	}

	const fmtTime = (s) => {
		if (!s) return ''
		const d = new Date(s)
		return isNaN(d) ? String(s) : d.toLocaleString()
	}

	// A table with a caption-less header row; rows are arrays of cells
	// (text or nodes). An empty list shows one row saying so.
	const table = (spec, headers, rows, empty) => h('div.scroll', h(spec,
		h('thead', h('tr', headers.map(x => h('th', { scope: 'col' }, x)))),
		h('tbody', rows.length ? rows.map(r => h('tr', r.map(c => h('td', c))))
			: h('tr', h('td.empty', { colspan: headers.length }, empty || 'None.'))),
	))

	// A status line for a section's actions (announced by screen readers).
	const statusLine = (id) => h('p.status', { id, role: 'status', 'aria-live': 'polite' })

	// A rough password strength estimate: bits from length and character
	// classes, discounted for repeats. Feedback only, never a rule.
	const strength = (pw) => {
		const n = [...pw].length
		if (n === 0) return { bits: 0, label: '' }
		let pool = 0
		if (/[a-z]/.test(pw)) pool += 26
		if (/[A-Z]/.test(pw)) pool += 26
		if (/[0-9]/.test(pw)) pool += 10
		if (/[^a-zA-Z0-9]/.test(pw)) pool += 33
		const distinct = new Set(pw).size
		const bits = Math.round(Math.min(n, distinct * 2) * Math.log2(Math.max(pool, 2)))
		let label
		if (n < 8) label = 'too short (at least 8 characters)'
		else if (bits < 40) label = 'weak'
		else if (bits < 60) label = 'fair'
		else if (bits < 80) label = 'good'
		else label = 'strong'
		return { bits, label }
	}

	return { kind, h, show, api, signIn, signOut, start, guard, fmtTime, ApiError, table, statusLine, strength }
})()
