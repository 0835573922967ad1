//! Progress of one import: its events, the state a late listener replays,
//! and their server-sent-events form.
//!
//! Owns [`Event`] and [`Progress`], pure: applying an event updates the
//! state (latest count per mailbox, problems, current step, end) and
//! [`Progress::replay`] gives the events that bring a new listener to the
//! same point. Problems carry a sequence number so a listener that fell
//! behind and re-synchronises skips the ones it already sent. At most
//! [`MAX_PROBLEMS`] problems are kept; later ones are counted and reported
//! as one summary at the end.
//!
//! Never: does I/O or keeps listeners (the actor does).

use std::collections::BTreeMap;

/// Most problems kept for replay.
pub const MAX_PROBLEMS: usize = 1000;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Messages imported so far into a mailbox.
    Count {
        /// The mailbox.
        mailbox: String,
        /// Messages so far.
        count: u64,
    },
    /// Something was skipped, or the import failed.
    Problem {
        /// For people.
        message: String,
    },
    /// A numbered problem, as stored and sent (the sink sends `Problem`).
    Numbered {
        /// Sequence number, from 0.
        seq: u64,
        /// For people.
        message: String,
    },
    /// A phase of the import.
    Step {
        /// For people.
        title: String,
    },
    /// The import is published.
    Done,
    /// The import ended without changes.
    Aborted,
}

impl Event {
    /// Whether this ends a stream.
    pub fn is_end(&self) -> bool {
        matches!(self, Event::Done | Event::Aborted)
    }

    /// The SSE frame: `event: <name>\ndata: <json>\n\n`.
    pub fn sse(&self) -> String {
        let (name, data) = match self {
            Event::Count { mailbox, count } => (
                "count",
                serde_json::json!({ "Mailbox": mailbox, "Count": count }),
            ),
            Event::Problem { message } | Event::Numbered { message, .. } => {
                ("problem", serde_json::json!({ "Message": message }))
            }
            Event::Step { title } => ("step", serde_json::json!({ "Title": title })),
            Event::Done => ("done", serde_json::json!({})),
            Event::Aborted => ("aborted", serde_json::json!({})),
        };
        format!("event: {name}\ndata: {data}\n\n")
    }
}

/// The state of one import, as far as listeners care.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    counts: BTreeMap<String, u64>,
    problems: Vec<String>,
    dropped: u64,
    step: Option<String>,
    end: Option<Event>,
}

impl Progress {
    /// Applies an event; returns what to broadcast (`None`: nothing).
    pub fn apply(&mut self, e: Event) -> Option<Event> {
        if self.end.is_some() {
            return None;
        }
        match e {
            Event::Count { ref mailbox, count } => {
                self.counts.insert(mailbox.clone(), count);
                Some(e)
            }
            Event::Problem { message } | Event::Numbered { message, .. } => {
                if self.problems.len() >= MAX_PROBLEMS {
                    self.dropped += 1;
                    return None;
                }
                self.problems.push(message.clone());
                Some(Event::Numbered {
                    seq: self.problems.len() as u64 - 1,
                    message,
                })
            }
            Event::Step { ref title } => {
                self.step = Some(title.clone());
                Some(e)
            }
            Event::Done | Event::Aborted => {
                self.end = Some(e.clone());
                Some(e)
            }
        }
    }

    /// The summary of dropped problems, to apply before the end.
    pub fn dropped_summary(&mut self) -> Option<Event> {
        if self.dropped == 0 {
            return None;
        }
        let n = std::mem::take(&mut self.dropped);
        // Bypasses the cap: exactly one summary.
        self.problems.push(format!("{n} more problems not shown"));
        Some(Event::Numbered {
            seq: self.problems.len() as u64 - 1,
            message: self.problems[self.problems.len() - 1].clone(),
        })
    }

    /// Whether the import has ended.
    pub fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Events that bring a listener to the current state; problems numbered
    /// below `from_problem` are left out.
    pub fn replay(&self, from_problem: u64) -> Vec<Event> {
        let mut v = Vec::new();
        if let Some(t) = &self.step {
            v.push(Event::Step { title: t.clone() });
        }
        for (i, p) in self.problems.iter().enumerate().skip(from_problem as usize) {
            v.push(Event::Numbered {
                seq: i as u64,
                message: p.clone(),
            });
        }
        for (m, c) in &self.counts {
            v.push(Event::Count {
                mailbox: m.clone(),
                count: *c,
            });
        }
        if let Some(e) = &self.end {
            v.push(e.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_and_end() {
        let mut p = Progress::default();
        p.apply(Event::Step { title: "s".into() });
        p.apply(Event::Count {
            mailbox: "a".into(),
            count: 100,
        });
        p.apply(Event::Count {
            mailbox: "a".into(),
            count: 150,
        });
        let n = p.apply(Event::Problem {
            message: "x".into(),
        });
        assert_eq!(
            n,
            Some(Event::Numbered {
                seq: 0,
                message: "x".into()
            })
        );
        assert_eq!(p.apply(Event::Aborted), Some(Event::Aborted));
        assert_eq!(p.apply(Event::Done), None, "one end only");
        let r = p.replay(0);
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[2],
            Event::Count {
                mailbox: "a".into(),
                count: 150
            }
        );
        assert_eq!(r.last(), Some(&Event::Aborted));
        assert_eq!(p.replay(1).len(), 3, "seen problems skipped");
        assert_eq!(
            Event::Count {
                mailbox: "a".into(),
                count: 1
            }
            .sse(),
            "event: count\ndata: {\"Count\":1,\"Mailbox\":\"a\"}\n\n"
        );
    }

    #[test]
    fn problems_are_bounded() {
        let mut p = Progress::default();
        for i in 0..MAX_PROBLEMS + 5 {
            p.apply(Event::Problem {
                message: format!("p{i}"),
            });
        }
        assert!(p.dropped_summary().is_some());
        assert_eq!(p.replay(0).len(), MAX_PROBLEMS + 1);
    }
}
