//! Glob matching as Redis' `stringmatchlen` does it: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and
//! `\x` escapes. Linear-time backtracking on the last `*` only, so hostile patterns cannot blow
//! up (every other token matches exactly one byte).

/// Match the token at `p[pi..]` against byte `c`: `Some(next_pi)` when it matches.
fn token(p: &[u8], pi: usize, c: u8) -> (bool, usize) {
    match p[pi] {
        b'?' => (true, pi + 1),
        b'\\' if pi + 1 < p.len() => (p[pi + 1] == c, pi + 2),
        b'[' => {
            let mut i = pi + 1;
            let negate = i < p.len() && p[i] == b'^';
            if negate {
                i += 1;
            }
            let mut hit = false;
            loop {
                if i >= p.len() {
                    break;
                }
                if p[i] == b']' {
                    i += 1;
                    break;
                }
                if p[i] == b'\\' && i + 1 < p.len() {
                    hit |= p[i + 1] == c;
                    i += 2;
                } else if i + 2 < p.len() && p[i + 1] == b'-' {
                    let (mut lo, mut hi) = (p[i], p[i + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    hit |= c >= lo && c <= hi;
                    i += 3;
                } else {
                    hit |= p[i] == c;
                    i += 1;
                }
            }
            (hit != negate, i)
        }
        lit => (lit == c, pi + 1),
    }
}

/// True when `s` matches the glob `pattern` (case-sensitive).
pub(crate) fn matches(pattern: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < pattern.len() && pattern[pi] == b'*' {
            while pi < pattern.len() && pattern[pi] == b'*' {
                pi += 1;
            }
            if pi == pattern.len() {
                return true;
            }
            star = Some((pi, si));
            continue;
        }
        if pi < pattern.len() {
            let (ok, next) = token(pattern, pi, s[si]);
            if ok {
                pi = next;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    pattern[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_semantics() {
        assert!(matches(b"*", b""));
        assert!(matches(b"*", b"anything"));
        assert!(matches(b"h?llo", b"hello"));
        assert!(!matches(b"h?llo", b"hllo"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(matches(b"h[^e]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"h[b-a]llo", b"hallo"));
        assert!(!matches(b"h[a-b]llo", b"hcllo"));
        assert!(matches(b"h\\*llo", b"h*llo"));
        assert!(!matches(b"h\\*llo", b"hello"));
        assert!(matches(b"user:*:name", b"user:42:name"));
        assert!(!matches(b"user:*:name", b"user:42:names"));
        assert!(matches(b"*a*b*c", b"xxaxxbxxc"));
        assert!(!matches(b"*a*b*c", b"xxaxxcxxb"));
        assert!(matches(b"a[\\]]b", b"a]b"));
        assert!(!matches(b"abc", b"ab"));
        assert!(!matches(b"ab", b"abc"));
        // Hostile pattern stays fast.
        let s = vec![b'a'; 5000];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*a*a*b", &s));
    }
}
