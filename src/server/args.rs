//! Argument parsing and the error replies every server command shares (a leaf: commands
//! import these instead of each other).

use crate::command::CommandSpec;
use crate::resp::Value;

/// Parse a decimal integer argument as Redis does.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// `ERR value is not an integer or out of range`.
pub(crate) fn not_integer() -> Value {
    Value::error("ERR value is not an integer or out of range")
}

/// `ERR syntax error`.
pub(crate) fn syntax_error() -> Value {
    Value::error("ERR syntax error")
}

/// The error for a wrong argument count.
pub(crate) fn arity_error(spec: &CommandSpec) -> Value {
    Value::error(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name
    ))
}

/// The reply of `<CMD> HELP`: the header, `lines`, and HELP itself, as Redis'
/// `addReplyHelp` words it.
pub(crate) fn help(cmd: &str, lines: &[&'static str]) -> Value {
    let head = format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    let mut v = vec![Value::SimpleString(bytes::Bytes::from(head))];
    v.extend(lines.iter().map(|l| Value::simple(l)));
    v.push(Value::simple("HELP"));
    v.push(Value::simple("    Prints this help."));
    Value::Array(v)
}
