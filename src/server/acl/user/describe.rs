//! How a user reads back (ACL LIST, ACL GETUSER): Redis 7.0's descriptions, including its
//! best-fit search for the category rules that reproduce a command bitmap.

use super::super::cat::{universe, CATEGORIES};
use super::{KeyPattern, Selector, User};

impl Selector {
    /// The command rules as `ACL GETUSER` shows them: `+@all`/`-@all`, the categories that
    /// fit best, then single commands (Redis' algorithm, so the same bitmap reads the same).
    pub(crate) fn describe_commands(&self) -> String {
        let u = universe();
        let mut rules = String::new();
        let additive = !self.future;
        let mut fake = Selector::empty();
        if additive {
            rules.push_str("-@all ");
        } else {
            rules.push_str("+@all ");
            fake.all(true);
        }
        let mut temp = Selector::empty();
        temp.allowed.clone_from(&self.allowed);
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0, 0);
                for id in u.in_category(1 << j) {
                    if temp.bit(id) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.category(1 << j, additive);
            temp.category(1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for id in 0..u.len() {
            let bit = self.bit(id);
            if bit != fake.bit(id) {
                rules.push(if bit { '+' } else { '-' });
                rules.push_str(u.cmds[id].spec.name);
                rules.push(' ');
                fake.change(id, bit);
            }
            if let (false, Some(args)) = (bit, self.firstargs.get(&id)) {
                for arg in args {
                    rules.push('+');
                    rules.push_str(u.cmds[id].spec.name);
                    rules.push('|');
                    rules.push_str(&String::from_utf8_lossy(arg));
                    rules.push(' ');
                }
            }
        }
        rules.pop();
        rules
    }

    /// Key patterns as GETUSER shows them (`~*`, or `~a %R~b`, or empty).
    pub(crate) fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".to_string();
        }
        let pats: Vec<String> = self.patterns.iter().map(pattern_string).collect();
        pats.join(" ")
    }

    /// Channel patterns as GETUSER shows them (`&*`, or `&a &b`, or empty).
    pub(crate) fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".to_string();
        }
        let pats: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        pats.join(" ")
    }
}

impl Selector {
    /// Keys, channels and commands as ACL LIST shows a selector (Redis'
    /// `ACLDescribeSelector`).
    fn describe(&self) -> String {
        let mut out = String::new();
        if self.allkeys {
            out.push_str("~* ");
        } else {
            for p in &self.patterns {
                out.push_str(&pattern_string(p));
                out.push(' ');
            }
        }
        if self.allchannels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }
}

impl User {
    /// The rules after `user <name> ` in ACL LIST.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for f in self.flags() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.sel.describe());
        for sel in &self.selectors {
            out.push_str(" (");
            out.push_str(&sel.describe());
            out.push(')');
        }
        out
    }
}

fn pattern_string(p: &KeyPattern) -> String {
    let prefix = match (p.read, p.write) {
        (true, false) => "%R~",
        (false, true) => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
}
