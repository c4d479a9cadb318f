//! `CLIENT ID|SETNAME|GETNAME|LIST|INFO|SETINFO|HELP`. `SETINFO` is Redis 7.2's (7.0 has none,
//! but clients send it on connect): a kept difference.

use bytes::Bytes;

use super::connection::check_client_name;
use super::{integer, is};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// `CLIENT subcommand ...`.
pub fn client<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let sub = &args[1];
    let arity = |n: usize, name: &'static str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(CommandError::WrongArity(name))
        }
    };
    if is(sub, "id") {
        arity(2, "client|id")?;
        let id = ctx.session.id() as i64;
        ctx.reply().int(id);
    } else if is(sub, "setname") {
        arity(3, "client|setname")?;
        check_client_name(&args[2])?;
        let name = (!args[2].is_empty()).then(|| args[2].clone());
        ctx.session.info.set_name(name);
        ctx.reply().ok();
    } else if is(sub, "getname") {
        arity(2, "client|getname")?;
        match ctx.session.info.name() {
            Some(name) => ctx.reply().bulk(&name),
            None => ctx.reply().null(),
        }
    } else if is(sub, "info") {
        arity(2, "client|info")?;
        let mut line = ctx.session.info.line(ctx.now());
        line.push('\n');
        ctx.reply().verbatim("txt", line.as_bytes());
    } else if is(sub, "list") {
        let now = ctx.now();
        let mut ids: Option<Vec<u64>> = None;
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "type") && i + 1 < args.len() {
                let kind = &args[i + 1];
                if !["normal", "master", "replica", "slave", "pubsub"]
                    .iter()
                    .any(|k| is(kind, k))
                {
                    return Err(CommandError::echo(
                        "ERR Unknown client type '",
                        kind,
                        usize::MAX,
                        "'",
                    ));
                }
                if !is(kind, "normal") {
                    ids = Some(Vec::new());
                }
                i += 2;
            } else if is(&args[i], "id") && i + 1 < args.len() {
                let mut list = Vec::new();
                for arg in &args[i + 1..] {
                    let id = integer(arg)
                        .ok()
                        .filter(|&id| id > 0)
                        .ok_or(CommandError::other("ERR Invalid client ID"))?;
                    list.push(id as u64);
                }
                ids = Some(list);
                i = args.len();
            } else {
                return Err(CommandError::Syntax);
            }
        }
        let mut text = String::new();
        for client in ctx.server.clients.list() {
            if ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
                text.push_str(&client.line(now));
                text.push('\n');
            }
        }
        ctx.reply().verbatim("txt", text.as_bytes());
    } else if is(sub, "setinfo") {
        arity(4, "client|setinfo")?;
        let value = args[3].clone();
        if is(&args[2], "lib-name") {
            if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return Err(CommandError::other(
                    "ERR lib-name cannot contain spaces, newlines or special characters.",
                ));
            }
            ctx.session.info.set_lib(Some(value), None);
        } else if is(&args[2], "lib-ver") {
            if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
                return Err(CommandError::other(
                    "ERR lib-ver cannot contain spaces, newlines or special characters.",
                ));
            }
            ctx.session.info.set_lib(None, Some(value));
        } else {
            return Err(CommandError::other(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2])
            )));
        }
        ctx.reply().ok();
    } else if is(sub, "help") {
        let lines: &[&str] = &[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [TYPE <normal|master|replica|pubsub>]",
            "LIST [ID <id> [<id>...]]",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client meta attr.",
            "HELP",
            "    Print this help.",
        ];
        ctx.reply_help(lines);
    } else {
        return Err(CommandError::other(format!(
            "ERR unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}
