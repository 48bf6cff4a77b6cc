//! One ACL user: flags, password hashes and its (root) selector, changed by `ACL SETUSER`
//! rules and described back as `ACL LIST` / `ACL GETUSER` show it, the way Redis 7.0 does.

use std::collections::BTreeMap;

use super::cat::{self, universe};
use super::sha256::sha256_hex;

mod describe;

/// Why a rule was refused (`ERR Error in ACL SETUSER modifier '...': <this>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleError {
    /// ENOENT.
    UnknownName,
    /// EINVAL.
    Syntax,
    /// EEXIST.
    AfterAllKeys,
    /// EISDIR.
    AfterAllChannels,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSub,
}

impl RuleError {
    /// Redis' wording.
    pub(crate) fn text(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of \
                 patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// A key pattern and what it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    /// Glob pattern.
    pub(crate) pattern: Vec<u8>,
    /// `%R~` (or `~`).
    pub(crate) read: bool,
    /// `%W~` (or `~`).
    pub(crate) write: bool,
}

/// What a user may run and touch (Redis' root selector).
#[derive(Clone, Debug)]
pub(crate) struct Selector {
    /// One bit per command id of the universe.
    allowed: Vec<u64>,
    /// Redis' reserved bit: set by `+@all`, kept by later `-@cat`/`-cmd`: "+@all ..." rules.
    future: bool,
    /// Every command, no bit test needed (cleared by any removal).
    pub(crate) allcommands: bool,
    /// `+cmd|arg` for a command without subcommands: allowed first arguments.
    pub(crate) firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    /// `allkeys` / `~*`.
    pub(crate) allkeys: bool,
    /// Key patterns, in the order added.
    pub(crate) patterns: Vec<KeyPattern>,
    /// `allchannels` / `&*`.
    pub(crate) allchannels: bool,
    /// Channel patterns, in the order added.
    pub(crate) channels: Vec<Vec<u8>>,
}

impl Selector {
    /// No commands, keys or channels (Redis' `acl-pubsub-default resetchannels`).
    fn empty() -> Selector {
        Selector {
            allowed: vec![0; universe().len().div_ceil(64)],
            future: false,
            allcommands: false,
            firstargs: BTreeMap::new(),
            allkeys: false,
            patterns: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
        }
    }

    /// The bit of command `id`.
    pub(crate) fn bit(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Allow or block a command, and a container's subcommands with it.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        for sub in universe().cmds[id].subs.clone() {
            self.set_bit(sub, on);
        }
    }

    fn category(&mut self, mask: u32, on: bool) {
        for id in universe().in_category(mask).collect::<Vec<_>>() {
            self.change(id, on);
        }
    }

    fn all(&mut self, on: bool) {
        self.allowed
            .iter_mut()
            .for_each(|w| *w = if on { !0 } else { 0 });
        self.future = on;
        self.allcommands = on;
        self.firstargs.clear();
    }

    /// One selector rule (commands, keys, channels).
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"allkeys" | b"~*" => {
                self.allkeys = true;
                self.patterns.clear();
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.patterns.clear();
            }
            b"allchannels" | b"&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.all(true),
            b"nocommands" | b"-@all" => self.all(false),
            [b'~' | b'%', ..] => return self.key_pattern(op),
            [b'&', ..] => {
                if self.allchannels {
                    return Err(RuleError::AfterAllChannels);
                }
                let pat = &op[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_vec());
                }
            }
            [sign @ (b'+' | b'-'), b'@', ..] => {
                let mask = cat::category(&op[2..]).ok_or(RuleError::UnknownName)?;
                self.category(mask, *sign == b'+');
            }
            [b'+', ..] => return self.allow_command(&op[1..]),
            [b'-', ..] => {
                let id = universe().lookup(&op[1..]).ok_or(RuleError::UnknownName)?;
                self.change(id, false);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::AfterAllKeys);
        }
        let (mut read, mut write, mut offset) = (false, false, 1);
        if op[0] == b'%' {
            while offset < op.len() {
                match op[offset].to_ascii_uppercase() {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            if !read && !write {
                return Err(RuleError::Syntax);
            }
        } else {
            (read, write) = (true, true);
        }
        let pat = &op[offset.min(op.len())..];
        if has_spaces(pat) {
            return Err(RuleError::Syntax);
        }
        match self.patterns.iter_mut().find(|p| p.pattern == pat) {
            Some(p) => {
                p.read |= read;
                p.write |= write;
            }
            None => self.patterns.push(KeyPattern {
                pattern: pat.to_vec(),
                read,
                write,
            }),
        }
        self.allkeys = false;
        Ok(())
    }

    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let u = universe();
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let id = u.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change(id, true);
            return Ok(());
        };
        let (top, sub) = (&name[..bar], &name[bar + 1..]);
        let id = u.lookup(top).ok_or(RuleError::UnknownName)?;
        if u.cmds[id].is_sub {
            return Err(RuleError::FirstArgOfSub);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !u.cmds[id].subs.is_empty() {
            let sub_id = u.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change(sub_id, true);
        } else {
            let list = self.firstargs.entry(id).or_default();
            if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                list.push(sub.to_vec());
            }
        }
        Ok(())
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

/// True when `hash` is 64 lower-case hex characters.
fn valid_hash(hash: &[u8]) -> bool {
    hash.len() == 64 && hash.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An ACL user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// Its name.
    pub(crate) name: String,
    /// `on`.
    pub(crate) enabled: bool,
    /// `off` (what a new user starts with).
    pub(crate) disabled: bool,
    /// `nopass`: any password works.
    pub(crate) nopass: bool,
    skip_sanitize: bool,
    sanitize: bool,
    /// Hex SHA-256 of each password, in the order added.
    pub(crate) passwords: Vec<String>,
    /// What it may do (Redis' root selector).
    pub(crate) sel: Selector,
    /// `(...)` selectors: a command runs when the root or any of these allows it.
    pub(crate) selectors: Vec<Selector>,
}

impl User {
    /// A new user as `ACL SETUSER name` creates it: off, no passwords, nothing allowed.
    pub(crate) fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            disabled: true,
            nopass: false,
            skip_sanitize: false,
            sanitize: false,
            passwords: Vec::new(),
            sel: Selector::empty(),
            selectors: Vec::new(),
        }
    }

    /// The `default` user of a server with `requirepass` (or without: `nopass`).
    pub(crate) fn default_user(requirepass: Option<&str>) -> User {
        let mut u = User::new("default");
        for op in ["+@all", "~*", "&*", "on"] {
            let _ = u.apply(op.as_bytes());
        }
        match requirepass {
            Some(p) => u.passwords.push(sha256_hex(p.as_bytes())),
            None => u.nopass = true,
        }
        u
    }

    /// One `ACL SETUSER` rule.
    pub(crate) fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = op.to_ascii_lowercase();
        match lower.as_slice() {
            b"on" => (self.enabled, self.disabled) = (true, false),
            b"off" => (self.enabled, self.disabled) = (false, true),
            b"skip-sanitize-payload" => (self.skip_sanitize, self.sanitize) = (true, false),
            b"sanitize-payload" => (self.skip_sanitize, self.sanitize) = (false, true),
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"reset" => {
                for step in [
                    "resetpass",
                    "resetkeys",
                    "resetchannels",
                    "off",
                    "sanitize-payload",
                    "clearselectors",
                    "-@all",
                ] {
                    self.apply(step.as_bytes())?;
                }
            }
            b"clearselectors" => self.selectors.clear(),
            [b'(', .., b')'] => {
                let inner = String::from_utf8_lossy(&op[1..op.len() - 1]).into_owned();
                let mut sel = Selector::empty();
                for rule in inner.split_whitespace() {
                    sel.apply(rule.as_bytes())?;
                }
                self.selectors.push(sel);
            }
            [b'>' | b'#', ..] => {
                let hash = if op[0] == b'>' {
                    sha256_hex(&op[1..])
                } else if valid_hash(&op[1..]) {
                    String::from_utf8_lossy(&op[1..]).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            [b'<' | b'!', ..] => {
                let hash = if op[0] == b'<' {
                    sha256_hex(&op[1..])
                } else if valid_hash(&op[1..]) {
                    String::from_utf8_lossy(&op[1..]).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                let at = self
                    .passwords
                    .iter()
                    .position(|p| *p == hash)
                    .ok_or(RuleError::NoSuchPassword)?;
                self.passwords.remove(at);
            }
            _ => self.sel.apply(op)?,
        }
        Ok(())
    }

    /// The root selector, then the `(...)` ones.
    pub(crate) fn all_selectors(&self) -> impl Iterator<Item = &Selector> {
        std::iter::once(&self.sel).chain(&self.selectors)
    }

    /// True when `pass` logs this user in (`nopass`, or a matching hash; compared in constant
    /// time for every password).
    pub(crate) fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hashed = sha256_hex(pass);
        self.passwords
            .iter()
            .fold(false, |ok, p| ok | ct_eq(p.as_bytes(), hashed.as_bytes()))
    }

    /// The flags, in Redis' order.
    pub(crate) fn flags(&self) -> Vec<&'static str> {
        [
            (self.enabled, "on"),
            (self.disabled, "off"),
            (self.nopass, "nopass"),
            (self.skip_sanitize, "skip-sanitize-payload"),
            (self.sanitize, "sanitize-payload"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("u");
        for r in rules.split(' ') {
            u.apply(r.as_bytes()).unwrap();
        }
        u
    }

    #[test]
    fn described_as_redis_7_0_describes_it() {
        // Outputs taken from redis-server 7.0.15 (whose single-command rules come in its
        // hash table's order, random per process; here in command table order).
        assert_eq!(User::default_user(None).describe(), "on nopass ~* &* +@all");
        assert_eq!(
            user("reset").describe(),
            "off sanitize-payload resetchannels -@all"
        );
        let u = user("on >p1 ~cached:* %R~r* &chan +get +@hash -hdel +client|id resetchannels &x*");
        assert_eq!(
            u.describe(),
            "on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~cached:* \
             %R~r* resetchannels &x* -@all +@hash +client|id +get -hdel"
        );
        assert_eq!(u.sel.describe_keys(), "~cached:* %R~r*");
        assert_eq!(u.sel.describe_channels(), "&x*");
        assert_eq!(user("+@all -@hash").sel.describe_commands(), "+@all -@hash");
        assert_eq!(
            user("-@all +select|0").sel.describe_commands(),
            "-@all +select|0"
        );
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new("u");
        assert_eq!(u.apply(b"+nosuch"), Err(RuleError::UnknownName));
        assert_eq!(u.apply(b"+@nosuch"), Err(RuleError::UnknownName));
        assert_eq!(u.apply(b"bogus"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"<nope"), Err(RuleError::NoSuchPassword));
        assert_eq!(u.apply(b"#abc"), Err(RuleError::BadHash));
        assert_eq!(u.apply(b"+config|get|x"), Err(RuleError::FirstArgOfSub));
        assert_eq!(u.apply(b"-config|get|x"), Err(RuleError::UnknownName));
        assert_eq!(u.apply(b"+select|"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"%X~a"), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"%~a"), Err(RuleError::Syntax));
        u.apply(b"allkeys").unwrap();
        assert_eq!(u.apply(b"~a"), Err(RuleError::AfterAllKeys));
        u.apply(b"allchannels").unwrap();
        assert_eq!(u.apply(b"&a"), Err(RuleError::AfterAllChannels));
        u.apply(b">x").unwrap();
        assert!(u.password_ok(b"x") && !u.password_ok(b"y"));
        u.apply(b"<x").unwrap();
        assert!(!u.password_ok(b"x"));
    }
}
