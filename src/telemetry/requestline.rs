//! The per-request log line, written by hand.
//!
//! Owns [`LogFormat`], the event format postern logs with. Every event is
//! formatted exactly as `tracing-subscriber`'s default full format (with
//! [`LogTime`] timestamps), but the one event logged for every request
//! (target `postern::request`) is written without `core::fmt` where it can
//! be: it took ~7,000 instructions per request through the generic field
//! formatting (callgrind, docs/performance.md). The text is the same byte for
//! byte (tested against the default format); anything this fast path does
//! not know (colours, a span around the event, another level, an unknown
//! field) goes to the default format.
//!
//! Never: changes what a line says, or drops a field.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::logtime::LogTime;

/// The target of the request line (see src/http/mod.rs).
const REQUEST: &str = "postern::request";

/// The fields the request line may carry.
const REQUEST_FIELDS: [&str; 8] = [
    "message",
    "kind",
    "method",
    "function",
    "status",
    "code",
    "duration_ms",
    "account",
];

/// The default full format, with the request line written by hand.
#[derive(Debug)]
pub struct LogFormat {
    default: Format<Full, LogTime>,
}

impl Default for LogFormat {
    fn default() -> LogFormat {
        LogFormat {
            default: tracing_subscriber::fmt::format().with_timer(LogTime),
        }
    }
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let plain = meta.target() == REQUEST
            && *meta.level() == Level::INFO
            && !w.has_ansi_escapes()
            && ctx.event_scope().is_none()
            && meta
                .fields()
                .iter()
                .all(|f| REQUEST_FIELDS.contains(&f.name()));
        if !plain {
            return self.default.format_event(ctx, w, event);
        }
        #[cfg(test)]
        tests::FAST.with(|n| n.set(n.get() + 1));
        if LogTime.format_time(&mut w).is_err() {
            w.write_str("<unknown time>")?;
        }
        w.write_str("  INFO postern::request: ")?;
        let mut fields = Fields {
            w: &mut w,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

/// Writes fields as the default format does: space-separated, the message
/// bare, the others `name=` and their `Debug` text.
struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn start(&mut self, field: &Field) {
        if self.first {
            self.first = false;
        } else if self.result.is_ok() {
            self.result = self.w.write_char(' ');
        }
        if self.result.is_ok() && field.name() != "message" {
            self.result = self
                .w
                .write_str(field.name())
                .and_then(|()| self.w.write_char('='));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            // Through the default's path: it escapes terminal controls.
            return self.record_debug(field, &format_args!("{value}"));
        }
        self.start(field);
        if self.result.is_err() {
            return;
        }
        // `Debug` of a string: quoted, escaped; plain printable ASCII
        // without quote or backslash is written as it is.
        let plain = value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        self.result = if plain {
            self.w
                .write_char('"')
                .and_then(|()| self.w.write_str(value))
                .and_then(|()| self.w.write_char('"'))
        } else {
            write!(self.w, "{value:?}")
        };
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.start(field);
        if self.result.is_err() {
            return;
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut v = value;
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.result = std::str::from_utf8(&digits[at..])
            .map_err(|_| fmt::Error)
            .and_then(|s| self.w.write_str(s));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.start(field);
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" && self.w.sanitizes_ansi_escapes() {
            // Terminal controls escaped as the default format does.
            write!(Escaping(self.w), "{value:?}")
        } else {
            write!(self.w, "{value:?}")
        };
    }
}

/// Passes text on with terminal controls escaped exactly as the default
/// format escapes a message (ESC, BEL, BS, FF, DEL as `\xNN`, C1 controls
/// as `\u{NN}`); runs of other characters are written whole.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, ch) in s.char_indices() {
            let escaped = matches!(ch, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f');
            let c1 = ('\u{80}'..='\u{9f}').contains(&ch);
            if !escaped && !c1 {
                continue;
            }
            self.0.write_str(&s[plain..i])?;
            if escaped {
                write!(self.0, "\\x{:02x}", u32::from(ch))?;
            } else {
                write!(self.0, "\\u{{{:x}}}", u32::from(ch))?;
            }
            plain = i + ch.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    thread_local! {
        /// Lines this thread wrote by the fast path.
        pub static FAST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    /// Logs the same events through our format and through the default one
    /// (with the same timer), and returns both texts with the timestamps
    /// (which differ) cut off.
    fn both(log: impl Fn()) -> (Vec<String>, Vec<String>) {
        FAST.with(|n| n.set(0));
        let (ours, theirs) = (Buf::default(), Buf::default());
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(LogFormat::default())
            .with_writer(ours.clone())
            .finish();
        tracing::subscriber::with_default(sub, &log);
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_timer(LogTime)
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(sub, &log);
        let lines = |b: &Buf| -> Vec<String> {
            String::from_utf8(b.0.lock().expect("buffer").clone())
                .expect("utf-8")
                .lines()
                .map(|l| l[27..].to_string())
                .collect()
        };
        (lines(&ours), lines(&theirs))
    }

    #[test]
    fn request_lines_are_the_default_text() {
        let method = hyper::Method::POST;
        let (ours, theirs) = both(|| {
            tracing::info!(
                target: "postern::request",
                kind = "webaccount",
                method = %method,
                function = Some("Version"),
                status = 200u16,
                code = None::<&str>,
                duration_ms = 0u64,
                account = Some("demo"),
                "request"
            );
            tracing::info!(
                target: "postern::request",
                kind = "none",
                method = %method,
                function = None::<&str>,
                status = 404u16,
                code = Some("sherpa:badAuth"),
                duration_ms = u64::MAX,
                account = Some("quo\"te\\ é\u{1b}[31m"),
                "request"
            );
        });
        assert_eq!(ours.len(), 2);
        assert_eq!(FAST.with(|n| n.get()), 2, "both by the fast path");
        assert_eq!(ours, theirs);
        assert!(
            ours[0].ends_with(
                "  INFO postern::request: request kind=\"webaccount\" method=POST function=\"Version\" status=200 duration_ms=0 account=\"demo\""
            ),
            "{}",
            ours[0]
        );
    }

    #[test]
    fn other_events_take_the_default_path() {
        let (ours, theirs) = both(|| {
            tracing::warn!(target: "postern::request", kind = "x", "odd level");
            tracing::info!(target: "postern::request", other = 1, "unknown field");
            tracing::info!(target: "postern::http", error = %"boom", "elsewhere");
            let span = tracing::info_span!("conn", id = 7);
            let _in = span.enter();
            tracing::info!(target: "postern::request", kind = "webmail", "in a span");
        });
        assert_eq!(ours.len(), 4);
        assert_eq!(FAST.with(|n| n.get()), 0);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn terminal_controls_in_the_message_are_escaped_as_by_default() {
        let (ours, theirs) = both(|| {
            tracing::info!(
                target: "postern::request",
                kind = "x",
                "a\x1b[31m\x07\x08\x0c\x7f\u{85}\u{9f} é"
            );
        });
        assert_eq!(FAST.with(|n| n.get()), 1, "by the fast path");
        assert_eq!(ours, theirs);
        assert!(
            ours[0].ends_with(r#"request: a\x1b[31m\x07\x08\x0c\x7f\u{85}\u{9f} é kind="x""#),
            "{}",
            ours[0]
        );
    }
}
