//! From a parsed command to its reply, in Redis's order of checks (`processCommand`): the
//! cross-protocol guard, lookup, arity, authentication, `MULTI` rules, the memory limit, then
//! queueing inside `MULTI` or running the handler, timed and counted.
//!
//! Must never: run a command an earlier check refused, or leave an open `MULTI` usable after a
//! refusal (it is flagged, and `EXEC` answers `EXECABORT`).

use bytes::{Bytes, BytesMut};

use super::cmd;
use super::command::{self, flags, CommandId, CommandSpec};
use super::context::CommandContext;
use super::error::{c_string, error_code, CommandError};
use super::reply::Reply;
use super::session::Session;
use super::state::RespServer;
use crate::store::{Acknowledgement, Shard, Transaction};

/// What the connection does after a command.
pub enum Outcome<'a, S: Shard> {
    /// Go on with the next command.
    Continue,
    /// Await this acknowledgement, then go on (the reply is already in the buffer).
    Wait(Acknowledgement<'a, S>),
    /// Send what is buffered, then close (`QUIT`).
    Close,
    /// Close without a reply (an HTTP request sent to the RESP port).
    Drop,
}

/// Runs one command from the wire; see the module doc.
pub fn execute<'a, S: Shard>(
    server: &'a RespServer<S>,
    session: &mut Session,
    out: &mut BytesMut,
    args: &[Bytes],
) -> Outcome<'a, S> {
    server.stats.processed.incr();
    let name = &args[0];
    // A browser or proxy talking HTTP to this port: close at once, as Redis does.
    if name.eq_ignore_ascii_case(b"host:") || name.eq_ignore_ascii_case(b"post") {
        tracing::warn!("closing a client that sent an HTTP request to the RESP port");
        return Outcome::Drop;
    }
    let spec = match check(server, session, args) {
        Ok(spec) => spec,
        Err((spec, error)) => {
            if let Some(spec) = spec {
                server.stats.commands[spec.id as usize].rejected.incr();
            }
            let error = match (spec.map(|s| s.id), session.multi.as_mut()) {
                // A refused EXEC ends the transaction (`execCommandAbort`).
                (Some(command::CommandId::Exec), Some(_)) => {
                    session.multi = None;
                    session.unwatch();
                    let mut text = b"EXECABORT Transaction discarded because of: ".to_vec();
                    text.extend_from_slice(&error.text());
                    CommandError::Echo(text)
                }
                (_, Some(multi)) => {
                    multi.aborted = true;
                    error
                }
                (_, None) => error,
            };
            write_error(server, session, out, &error);
            return Outcome::Continue;
        }
    };
    if session.multi.is_some() && !spec.has(flags::IMMEDIATE_IN_MULTI) {
        if let Some(multi) = session.multi.as_mut() {
            multi.commands.push(args.to_vec());
        }
        Reply::new(out, session.proto).simple("QUEUED");
        return Outcome::Continue;
    }
    let mut ctx = CommandContext::new(server, session, out, None);
    run(&mut ctx, spec, args);
    if ctx.close {
        return Outcome::Close;
    }
    match ctx.ack.take() {
        Some(ack) => Outcome::Wait(ack),
        None => Outcome::Continue,
    }
}

/// `EXEC`: its checks and its commit are in `cmd::transaction`; running the queued commands
/// inside the transaction is the dispatcher's.
fn exec<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let Some((mut txn, commands)) = cmd::transaction::begin_exec(ctx)? else {
        return Ok(());
    };
    ctx.reply().array(commands.len());
    for queued in &commands {
        execute_queued(ctx.server, ctx.session, ctx.out, &mut txn, queued);
    }
    cmd::transaction::commit_exec(ctx, txn);
    Ok(())
}

/// Runs a command `EXEC` queued, inside its transaction.
fn execute_queued<'a, S: Shard>(
    server: &'a RespServer<S>,
    session: &mut Session,
    out: &mut BytesMut,
    txn: &mut Transaction<'a, S>,
    args: &[Bytes],
) {
    // Checked when queued; looked up again (the table is static, so it is found).
    let Some(spec) = command::lookup(&args[0]) else {
        return;
    };
    let mut ctx = CommandContext::new(server, session, out, Some(txn));
    run(&mut ctx, spec, args);
}

/// The checks before a command runs or is queued; an error comes with the command, if known.
fn check<S: Shard>(
    server: &RespServer<S>,
    session: &Session,
    args: &[Bytes],
) -> Result<&'static CommandSpec, (Option<&'static CommandSpec>, CommandError)> {
    let Some(spec) = command::lookup(&args[0]) else {
        return Err((None, unknown_command(args)));
    };
    if !spec.arity_fits(args.len()) {
        return Err((Some(spec), CommandError::WrongArity(spec.name)));
    }
    command::check_subcommand(spec, args).map_err(|e| (Some(spec), e))?;
    if !session.authenticated && !spec.has(flags::NO_AUTH) {
        return Err((Some(spec), CommandError::NoAuth));
    }
    if session.multi.is_some() && spec.has(flags::NO_MULTI) {
        return Err((
            Some(spec),
            CommandError::other("ERR Command not allowed inside a transaction"),
        ));
    }
    let queued = session.multi.is_some() && !spec.has(flags::IMMEDIATE_IN_MULTI);
    let store = server.store();
    let max = store.max_memory();
    // As Redis's processCommand: before a command that may grow memory, make room (under an
    // evicting policy) for about its arguments, then refuse it if the estimate is still over
    // the cap. Outside any writer section: nothing is held while a dispatch runs.
    if (spec.has(flags::DENYOOM) || queued) && max != u64::MAX && !room_for(store, args) {
        return Err((
            Some(spec),
            CommandError::Store(crate::store::StoreError::MemoryFull {
                used: 0,
                limit: max,
            }),
        ));
    }
    Ok(spec)
}

/// Makes room for a command that may grow memory: its arguments' bytes and one entry. Under
/// `noeviction` this is the plain check that the estimate is not over the cap (Redis refuses
/// only then), so a command that does not fit is refused later, by the write itself.
fn room_for<S: Shard>(store: &crate::store::ShardedStore<S>, args: &[Bytes]) -> bool {
    if !store.eviction_policy().evicts() {
        return store.make_room(0, 0).is_ok();
    }
    let bytes: usize = args[1..].iter().map(|a| a.len()).sum();
    store.make_room(bytes as u64, 1).is_ok() || store.make_room(0, 0).is_ok()
}

/// A command handler (see `cmd/`).
type Handler<S> = fn(&mut CommandContext<'_, '_, S>, &[Bytes]) -> Result<(), CommandError>;

/// The handler of each command.
fn handler<S: Shard>(id: CommandId) -> Handler<S> {
    match id {
        CommandId::Ping => cmd::connection::ping,
        CommandId::Echo => cmd::connection::echo,
        CommandId::Quit => cmd::connection::quit,
        CommandId::Hello => cmd::connection::hello,
        CommandId::Auth => cmd::connection::auth,
        CommandId::Reset => cmd::connection::reset,
        CommandId::Time => cmd::connection::time,
        CommandId::Select => cmd::connection::select,
        CommandId::Wait => cmd::connection::wait,
        CommandId::Client => cmd::client::client,
        CommandId::Command => cmd::introspection::command,
        CommandId::Object => cmd::introspection::object,
        CommandId::Memory => cmd::introspection::memory,
        CommandId::Get => cmd::strings::get,
        CommandId::Set => cmd::strings::set,
        CommandId::Setnx => cmd::strings::setnx,
        CommandId::Setex => cmd::strings::setex,
        CommandId::Psetex => cmd::strings::psetex,
        CommandId::Getset => cmd::strings::getset,
        CommandId::Getdel => cmd::strings::getdel,
        CommandId::Getex => cmd::strings::getex,
        CommandId::Mget => cmd::strings::mget,
        CommandId::Mset => cmd::strings::mset,
        CommandId::Msetnx => cmd::strings::msetnx,
        CommandId::Append => cmd::strings::append,
        CommandId::Strlen => cmd::strings::strlen,
        CommandId::Getrange => cmd::strings::getrange,
        CommandId::Substr => cmd::strings::getrange,
        CommandId::Setrange => cmd::strings::setrange,
        CommandId::Incr => cmd::counters::incr,
        CommandId::Decr => cmd::counters::decr,
        CommandId::Incrby => cmd::counters::incrby,
        CommandId::Decrby => cmd::counters::decrby,
        CommandId::Incrbyfloat => cmd::counters::incrbyfloat,
        CommandId::Setbit => cmd::bits::setbit,
        CommandId::Getbit => cmd::bits::getbit,
        CommandId::Bitcount => cmd::bits::bitcount,
        CommandId::Bitpos => cmd::bits::bitpos,
        CommandId::Lcs => cmd::lcs::lcs,
        CommandId::Del => cmd::keys::del,
        CommandId::Unlink => cmd::keys::del,
        CommandId::Exists => cmd::keys::exists,
        CommandId::Touch => cmd::keys::exists,
        CommandId::Type => cmd::keys::key_type,
        CommandId::Rename => cmd::keys::rename,
        CommandId::Renamenx => cmd::keys::renamenx,
        CommandId::Copy => cmd::keys::copy,
        CommandId::Move => cmd::keys::move_key,
        CommandId::Randomkey => cmd::keys::randomkey,
        CommandId::Dbsize => cmd::keys::dbsize,
        CommandId::Keys => cmd::scan::keys,
        CommandId::Scan => cmd::scan::scan,
        CommandId::Flushdb => cmd::flush::flushdb,
        CommandId::Flushall => cmd::flush::flushall,
        CommandId::Expire => cmd::expire::expire,
        CommandId::Pexpire => cmd::expire::pexpire,
        CommandId::Expireat => cmd::expire::expireat,
        CommandId::Pexpireat => cmd::expire::pexpireat,
        CommandId::Ttl => cmd::expire::ttl,
        CommandId::Pttl => cmd::expire::pttl,
        CommandId::Expiretime => cmd::expire::expiretime,
        CommandId::Pexpiretime => cmd::expire::pexpiretime,
        CommandId::Persist => cmd::expire::persist,
        CommandId::Multi => cmd::transaction::multi,
        CommandId::Exec => exec,
        CommandId::Discard => cmd::transaction::discard,
        CommandId::Watch => cmd::transaction::watch,
        CommandId::Unwatch => cmd::transaction::unwatch,
        CommandId::Info => cmd::info::info,
        CommandId::Config => cmd::config::config,
        CommandId::Lastsave => cmd::persistence::lastsave,
        CommandId::Bgsave => cmd::persistence::bgsave,
        CommandId::Save => cmd::persistence::save,
        CommandId::Function => cmd::introspection::function,
    }
}

/// Runs the handler, timing and counting it, and writes its error if it fails.
fn run<S: Shard>(ctx: &mut CommandContext<'_, '_, S>, spec: &'static CommandSpec, args: &[Bytes]) {
    // The TSC through quanta: two `clock_gettime` calls per command showed in profiles.
    let timer = &ctx.server.timer;
    let started = timer.raw();
    let result = handler(spec.id)(ctx, args);
    let counters = &ctx.server.stats.commands[spec.id as usize];
    counters.calls.incr();
    counters
        .nanos
        .add(timer.delta_as_nanos(started, timer.raw()));
    ctx.session.info.touch(ctx.now(), spec.name);
    if let Err(error) = result {
        counters.failed.incr();
        let text = error.text();
        ctx.server.stats.error_reply(&error_code(&text));
        ctx.reply().error_bytes(&text);
    }
}

fn write_error<S: Shard>(
    server: &RespServer<S>,
    session: &Session,
    out: &mut BytesMut,
    error: &CommandError,
) {
    let text = error.text();
    server.stats.error_reply(&error_code(&text));
    Reply::new(out, session.proto).error_bytes(&text);
}

/// Redis's unknown-command text: the name (at most 128 bytes), then each argument quoted and
/// followed by a space while the list is under 128 bytes, each cut to what is left of them.
/// `%s` stops at a NUL byte.
pub fn unknown_command(args: &[Bytes]) -> CommandError {
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(c_string(&args[0], 128));
    text.extend_from_slice(b"', with args beginning with: ");
    let mut list = Vec::<u8>::new();
    for arg in &args[1..] {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(c_string(arg, room));
        list.extend_from_slice(b"' ");
    }
    text.extend_from_slice(&list);
    CommandError::Echo(text)
}
