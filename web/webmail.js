// postern webmail page: a read-only view of an account's mail. Mailboxes
// with counts, the newest messages of a mailbox in pages, one message's
// plain text; sign out. Every server string is set as text.
'use strict'

;(() => {
	const { h, show, api, signOut, guard, fmtTime, statusLine } = postern
	const PAGE = 50

	const status = statusLine('status')
	const mailboxesNav = h('nav#mailboxes', { 'aria-label': 'Mailboxes' })
	const listSec = h('section#list', { 'aria-live': 'polite' })
	const messageSec = h('section#message', { hidden: true, 'aria-labelledby': 'message-subject' })
	let current = { mailbox: null, offset: 0 }

	// "Name <addr>" → Name (the full value stays in the title).
	const senderName = (from) => {
		if (!from) return '(unknown sender)'
		const m = from.match(/^\s*"?([^"<]*?)"?\s*<[^>]*>\s*$/)
		return m && m[1] ? m[1] : from
	}

	const loadMailboxes = async () => {
		const list = await api('Mailboxes')
		mailboxesNav.replaceChildren(
			h('h2', 'Mailboxes'),
			list.length
				? h('ul', list.map(m => h('li', h('button.mailbox', {
					type: 'button',
					'data-name': m.Name,
					'aria-current': m.Name === current.mailbox ? 'true' : 'false',
					onclick: guard(status, () => openMailbox(m.Name, 0)),
				}, h('span.name', m.Name), ' ', h('span.count', { title: m.Unseen + ' unread of ' + m.Total }, m.Unseen ? m.Unseen + '/' + m.Total : String(m.Total))))))
				: h('p.empty', 'No mail yet. Import some on the account page.'),
		)
		return list
	}

	const openMailbox = async (mailbox, offset) => {
		const page = await api('Messages', mailbox, offset, PAGE)
		current = { mailbox, offset }
		for (const b of mailboxesNav.querySelectorAll('button.mailbox')) b.setAttribute('aria-current', b.dataset.name === mailbox ? 'true' : 'false')
		const first = page.Total ? page.Offset + 1 : 0
		const last = page.Offset + page.Messages.length
		const rows = page.Messages.map(m => h('tr', { class: m.Seen ? 'seen' : 'unseen' },
			h('td.from', { title: m.From }, senderName(m.From)),
			h('td.subject', h('button.link.open-message', { type: 'button', 'data-id': String(m.ID), onclick: guard(status, () => openMessage(m.ID)) }, m.Subject || '(no subject)')),
			h('td.date', fmtTime(m.Received)),
		))
		listSec.replaceChildren(
			h('h2#list-h', mailbox),
			h('p#list-range', page.Total ? 'Messages ' + first + '–' + last + ' of ' + page.Total + ', newest first' : 'This mailbox is empty.'),
			h('div.scroll', h('table#messages',
				h('thead', h('tr', h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Subject'), h('th', { scope: 'col' }, 'Received'))),
				h('tbody', rows),
			)),
			h('p.buttons',
				h('button#page-newer', { type: 'button', disabled: page.Offset === 0, onclick: guard(status, () => openMailbox(mailbox, Math.max(0, page.Offset - PAGE))) }, '← Newer'),
				h('button#page-older', { type: 'button', disabled: last >= page.Total, onclick: guard(status, () => openMailbox(mailbox, page.Offset + PAGE)) }, 'Older →'),
			),
		)
		listSec.hidden = false
		messageSec.hidden = true
	}

	const openMessage = async (id) => {
		const m = await api('Message', id)
		const back = h('button#message-back', { type: 'button', onclick: () => { messageSec.hidden = true; listSec.hidden = false; listSec.querySelector('button.open-message[data-id="' + id + '"]')?.focus() } }, '← Back to ' + m.Mailbox)
		messageSec.replaceChildren(
			h('p', back),
			h('h2#message-subject', m.Subject || '(no subject)'),
			h('dl',
				h('dt', 'From'), h('dd#message-from', m.From),
				h('dt', 'To'), h('dd#message-to', m.To),
				h('dt', 'Date'), h('dd#message-date', m.Date || fmtTime(m.Received)),
			),
			h('pre#message-text', m.Text),
		)
		listSec.hidden = true
		messageSec.hidden = false
		back.focus()
	}

	const render = async () => {
		show(
			h('header',
				h('h1', 'Webmail'),
				h('button#signout', { type: 'button', onclick: guard(status, signOut) }, 'Sign out'),
			),
			status,
			h('div.mail', mailboxesNav, h('div.mail-main', listSec, messageSec)),
		)
		const list = await loadMailboxes()
		const inbox = list.find(m => m.Name === 'Inbox') || list[0]
		if (inbox) await openMailbox(inbox.Name, 0)
	}

	postern.start(render)
})()
