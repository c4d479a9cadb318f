//! `INFO [section ...]`: Redis 7.0's sections and field names wherever the meaning is the same
//! (`redis_version`, `used_memory`, `used_cpu_user`, `db0:keys=…,expires=…`), with Redis's rules
//! for `default`, `all` and `everything`, in Redis's section order.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::redis_value::human::human_bytes;
use crate::resp::clients::unix_ms;
use crate::resp::command::COMMANDS;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::state::RespServer;
use crate::store::Shard;

/// Every section, in output order, and whether `default` includes it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("cluster", true),
    ("keyspace", true),
];

/// `INFO`.
pub fn info<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let mut wanted = [false; SECTIONS.len()];
    if args.len() == 1 {
        for (i, (_, default)) in SECTIONS.iter().enumerate() {
            wanted[i] = *default;
        }
    }
    for arg in &args[1..] {
        let name = String::from_utf8_lossy(arg).to_ascii_lowercase();
        match name.as_str() {
            "default" => {
                for (i, (_, default)) in SECTIONS.iter().enumerate() {
                    wanted[i] |= *default;
                }
            }
            "all" | "everything" => wanted = [true; SECTIONS.len()],
            _ => {
                if let Some(i) = SECTIONS.iter().position(|(s, _)| *s == name) {
                    wanted[i] = true;
                }
            }
        }
    }
    let mut text = String::new();
    for (i, (name, _)) in SECTIONS.iter().enumerate() {
        if !wanted[i] {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        section(ctx.server, ctx.db(), name, &mut text);
    }
    ctx.reply().verbatim("txt", text.as_bytes());
    Ok(())
}

fn cpu_seconds() -> (f64, f64) {
    // utime and stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (tick(11), tick(12))
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn section<S: Shard>(server: &RespServer<S>, _db: usize, name: &str, out: &mut String) {
    let store = server.store();
    let uptime = server.started.elapsed().as_secs();
    let now_ms = unix_ms();
    match name {
        "server" => {
            let _ = write!(
                out,
                "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:10\r\nconfigured_hz:10\r\nexecutable:{}\r\nconfig_file:\r\nio_threads_active:0\r\nshardkv_version:{}\r\nshardkv_store:{}\r\nshardkv_shards_per_db:{}\r\n",
                crate::resp::REDIS_VERSION,
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                server.run_id,
                server.port.load(Ordering::Relaxed),
                now_ms * 1000,
                uptime,
                uptime / 86_400,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                env!("CARGO_PKG_VERSION"),
                store.kind(),
                store.config().shards,
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:0\r\ntracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                server.clients.count(),
                server.clients.max_clients(),
            );
        }
        "memory" => {
            let used = store.memory_used();
            let max = match store.max_memory() {
                u64::MAX => 0,
                max => max,
            };
            let rss = rss_bytes();
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:mimalloc\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(max),
                store.eviction_policy().name(),
                if used == 0 { 0.0 } else { rss as f64 / used as f64 },
            );
        }
        "persistence" => {
            let (aof, status) = match &server.log {
                Some(log) => (
                    1,
                    if matches!(log.health(), crate::persistence::LogHealth::Ok) {
                        "ok"
                    } else {
                        "err"
                    },
                ),
                None => (0, "ok"),
            };
            let _ = write!(
                out,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:{aof}\r\naof_rewrite_in_progress:0\r\naof_last_write_status:{status}\r\n",
                server.last_save.load(Ordering::Relaxed),
            );
        }
        "stats" => {
            let mut calls = 0;
            let mut rejected = 0;
            for c in server.stats.commands.iter() {
                calls += c.calls.get();
                rejected += c.rejected.get();
            }
            // Redis counts every expired key it deleted, whoever noticed: here the wheel, and
            // the eviction walk (which reclaims expired entries before evicting live ones).
            let expired =
                store.stats().expired_by_wheel.get() + store.stats().expired_by_eviction.get();
            let evicted = store.stats().evicted_keys.get();
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{calls}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{expired}\r\nexpired_stale_perc:0.00\r\nevicted_keys:{evicted}\r\nkeyspace_hits:0\r\nkeyspace_misses:0\r\ntotal_error_replies:{}\r\ntotal_rejected_commands:{rejected}\r\nclient_output_buffer_limit_disconnections:{}\r\n",
                server.clients.accepted.load(Ordering::Relaxed),
                server.stats.net_input.load(Ordering::Relaxed),
                server.stats.net_output.load(Ordering::Relaxed),
                server.clients.rejected.load(Ordering::Relaxed),
                server.stats.total_errors(),
                server.stats.output_limit_disconnections.load(Ordering::Relaxed),
            );
        }
        "replication" => {
            let _ = write!(
                out,
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_repl_offset:0\r\nshardkv_replica_copies:{}\r\n",
                server.run_id,
                server.replicas.replicas(),
            );
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            let _ = write!(
                out,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n",
            );
        }
        "modules" => out.push_str("# Modules\r\n"),
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            for (spec, c) in COMMANDS.iter().zip(server.stats.commands.iter()) {
                let (calls, usec, rejected, failed) = (
                    c.calls.get(),
                    c.nanos.get() / 1000,
                    c.rejected.get(),
                    c.failed.get(),
                );
                if calls + rejected + failed == 0 {
                    continue;
                }
                let per_call = if calls == 0 {
                    0.0
                } else {
                    usec as f64 / calls as f64
                };
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    spec.name,
                );
            }
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (code, count) in server.stats.errors() {
                let _ = write!(out, "errorstat_{code}:count={count}\r\n");
            }
        }
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for db in 0..store.databases() {
                let keys = store.db_len(db);
                if keys == 0 {
                    continue;
                }
                let _ = write!(
                    out,
                    "db{db}:keys={keys},expires={},avg_ttl=0\r\n",
                    store.db_keys_with_ttl(db),
                );
            }
        }
        _ => {}
    }
}
