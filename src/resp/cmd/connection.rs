//! Connection commands: `PING`, `ECHO`, `QUIT`, `HELLO`, `AUTH`, `RESET`, `TIME`, `SELECT`,
//! `WAIT` (Redis 7.0's `server.c`, `networking.c`, `acl.c`, `db.c`, `replication.c`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{int32, integer, is};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::reply::Protocol;
use crate::store::Shard;

/// `PING [message]`.
pub fn ping<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    match args {
        [_] => ctx.reply().simple("PONG"),
        [_, message] => ctx.reply().bulk(message),
        _ => return Err(CommandError::WrongArity("ping")),
    }
    Ok(())
}

/// `ECHO message`.
pub fn echo<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ctx.reply().bulk(&args[1]);
    Ok(())
}

/// `QUIT`: `+OK`, then the connection closes.
pub fn quit<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    ctx.reply().ok();
    ctx.close = true;
    Ok(())
}

/// Checks a password (the user must be `default`).
fn authenticate<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), CommandError> {
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && ctx.server.password_matches(password) {
        ctx.session.authenticated = true;
        Ok(())
    } else {
        Err(CommandError::WrongPass)
    }
}

/// `AUTH [username] password`.
pub fn auth<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    match args {
        [_, password] => {
            if !ctx.server.password_set() {
                return Err(CommandError::other("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
            }
            authenticate(ctx, None, password)?;
        }
        [_, user, password] => authenticate(ctx, Some(user), password)?,
        _ => return Err(CommandError::Syntax),
    }
    ctx.reply().ok();
    Ok(())
}

/// A client name as Redis accepts it: printable ASCII without spaces.
pub fn check_client_name(name: &[u8]) -> Result<(), CommandError> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(())
    } else {
        Err(CommandError::other(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
pub fn hello<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let mut version = None;
    if let Some(v) = args.get(1) {
        let v = crate::redis_value::integer::string2ll(v).ok_or(CommandError::other(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        if !(2..=3).contains(&v) {
            return Err(CommandError::other("NOPROTO unsupported protocol version"));
        }
        version = Some(v);
    }
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            authenticate(ctx, Some(&args[i + 1]), &args[i + 2])?;
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            let name = &args[i + 1];
            check_client_name(name)?;
            ctx.session
                .info
                .set_name((!name.is_empty()).then(|| name.clone()));
            i += 2;
        } else {
            return Err(CommandError::echo(
                "ERR Syntax error in HELLO option '",
                &args[i],
                usize::MAX,
                "'",
            ));
        }
    }
    if !ctx.session.authenticated {
        return Err(CommandError::other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"));
    }
    if let Some(v) = version {
        ctx.session.proto = if v == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        ctx.session.info.set_resp(v as u64);
    }
    let proto = if ctx.session.proto == Protocol::Resp3 {
        3
    } else {
        2
    };
    let id = ctx.session.id() as i64;
    let mut reply = ctx.reply();
    reply.map(7);
    reply.bulk(b"server");
    reply.bulk(b"redis");
    reply.bulk(b"version");
    reply.bulk(crate::resp::REDIS_VERSION.as_bytes());
    reply.bulk(b"proto");
    reply.int(proto);
    reply.bulk(b"id");
    reply.int(id);
    reply.bulk(b"mode");
    reply.bulk(b"standalone");
    reply.bulk(b"role");
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(())
}

/// `RESET`.
pub fn reset<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let password_set = ctx.server.password_set();
    ctx.session.reset(password_set);
    ctx.reply().simple("RESET");
    Ok(())
}

/// `TIME`: unix seconds and microseconds, as two bulk strings.
pub fn time<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let mut reply = ctx.reply();
    reply.array(2);
    reply.bulk(now.as_secs().to_string().as_bytes());
    reply.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// `SELECT index`.
pub fn select<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let n = int32(&args[1])?;
    let db = usize::try_from(n)
        .ok()
        .filter(|&db| db < ctx.store().databases())
        .ok_or(CommandError::DbIndexOutOfRange)?;
    ctx.session.select(db);
    ctx.reply().ok();
    Ok(())
}

/// `WAIT numreplicas timeout`: how many replica copies have applied this connection's writes
/// (all of them, or 0 on time-out). Replicas here are in-process copies, acknowledged as
/// `--ack all` acknowledges; with none, the answer is 0 at once, as Redis answers without
/// replicas. A timeout of 0 waits at most an hour (Redis: forever).
pub fn wait<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let _wanted = integer(&args[1])?;
    let timeout = crate::redis_value::integer::string2ll(&args[2]).ok_or(CommandError::other(
        "ERR timeout is not an integer or out of range",
    ))?;
    if timeout < 0 {
        return Err(CommandError::other("ERR timeout is negative"));
    }
    let replicas = ctx.server.replicas.replicas();
    if replicas == 0 || ctx.in_exec() {
        ctx.reply().int(0);
        return Ok(());
    }
    // Every write this connection made is in its shard's sequence before the shard's last
    // one: waiting for all replicas to apply every shard's current last write covers them.
    let store = ctx.store();
    let points: Vec<(usize, u64)> = (0..store.shard_count())
        .map(|s| (s, store.shard_seq(s)))
        .filter(|&(_, seq)| seq > 0)
        .collect();
    let acked = points
        .iter()
        .all(|&(s, seq)| ctx.server.replicas.is_replicated(s, seq));
    if acked {
        ctx.reply().int(replicas as i64);
        return Ok(());
    }
    let deadline = std::time::Instant::now()
        + if timeout == 0 {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(timeout as u64)
        };
    let all = crate::resp::offload(|| loop {
        if points
            .iter()
            .all(|&(s, seq)| ctx.server.replicas.is_replicated(s, seq))
        {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    });
    ctx.reply().int(if all { replicas as i64 } else { 0 });
    Ok(())
}
