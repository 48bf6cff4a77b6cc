//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX, BLMPOP, BZMPOP,
//! XREAD/XREADGROUP with BLOCK): found here with their own timeout, so the router can run them
//! on a dedicated connection (they would stall every request queued behind them on a
//! multiplexed one) under a deadline of `request_timeout` plus that timeout.

use std::time::Duration;

use crate::types::Args;

/// How long a command may block on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Block {
    /// The command does not block.
    No,
    /// It blocks up to this long.
    For(Duration),
    /// Timeout 0: it blocks until data comes; the client adds no deadline of its own (the
    /// connection being alive is the only bound).
    Forever,
}

fn seconds(arg: Option<&[u8]>) -> Block {
    let secs = arg
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|t| t.parse::<f64>().ok());
    match secs {
        Some(0.0) => Block::Forever,
        Some(s) if s.is_finite() && s > 0.0 => Block::For(Duration::from_secs_f64(s.min(1e9))),
        // A bad timeout: the server refuses it at once.
        _ => Block::For(Duration::ZERO),
    }
}

/// The blocking behaviour of `args`.
pub(crate) fn block_of(args: &Args) -> Block {
    let Some(name) = args.get(0) else {
        return Block::No;
    };
    // Hot path: every command passes here; only names starting with B or X can block.
    if !matches!(name.first(), Some(b'b' | b'B' | b'x' | b'X')) || name.len() > 10 {
        return Block::No;
    }
    let mut upper = [0u8; 10];
    let upper = &mut upper[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    match &*upper {
        b"BLPOP" | b"BRPOP" | b"BLMOVE" | b"BRPOPLPUSH" | b"BZPOPMIN" | b"BZPOPMAX" => {
            seconds(args.get(args.len().saturating_sub(1)))
        }
        b"BLMPOP" | b"BZMPOP" => seconds(args.get(1)),
        b"XREAD" | b"XREADGROUP" => {
            let mut i = 1;
            while let Some(a) = args.get(i) {
                if a.eq_ignore_ascii_case(b"STREAMS") {
                    break;
                }
                if a.eq_ignore_ascii_case(b"BLOCK") {
                    let ms = args
                        .get(i + 1)
                        .and_then(|a| std::str::from_utf8(a).ok())
                        .and_then(|t| t.parse::<u64>().ok());
                    return match ms {
                        Some(0) => Block::Forever,
                        Some(ms) => Block::For(Duration::from_millis(ms)),
                        None => Block::For(Duration::ZERO),
                    };
                }
                i += 1;
            }
            Block::No
        }
        _ => Block::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Args {
        let mut it = s.split(' ');
        let mut a = Args::new(it.next().unwrap());
        for x in it {
            a.push(x);
        }
        a
    }

    #[test]
    fn finds_each_commands_timeout() {
        assert_eq!(block_of(&args("GET k")), Block::No);
        assert_eq!(
            block_of(&args("BLPOP a b 1.5")),
            Block::For(Duration::from_millis(1500))
        );
        assert_eq!(block_of(&args("brpop a 0")), Block::Forever);
        assert_eq!(
            block_of(&args("BLMOVE a b LEFT RIGHT 2")),
            Block::For(Duration::from_secs(2))
        );
        assert_eq!(
            block_of(&args("BLMPOP 3 1 a LEFT")),
            Block::For(Duration::from_secs(3))
        );
        assert_eq!(block_of(&args("XREAD COUNT 1 STREAMS s 0")), Block::No);
        assert_eq!(
            block_of(&args("XREAD BLOCK 250 STREAMS s $")),
            Block::For(Duration::from_millis(250))
        );
        assert_eq!(block_of(&args("XREAD BLOCK 0 STREAMS s $")), Block::Forever);
        assert_eq!(block_of(&args("BLPOP a x")), Block::For(Duration::ZERO));
    }
}
