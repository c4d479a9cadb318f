//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`. Redis 7.0 allocates the whole
//! `(a+1)(b+1)` table of 4-byte cells without a cap; like 7.2 we refuse a table larger than
//! `proto-max-bulk-len` (512 MB). The work is quadratic, so it runs with the async worker
//! handed off (`block_in_place`), never stalling other connections.

use bytes::Bytes;

use crate::redis_value::lcs::{self, LcsReply};
use crate::redis_value::PROTO_MAX_BULK_LEN;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// `LCS`.
pub fn lcs<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let options = lcs::parse_lcs_options(&args[3..])?;
    let a = ctx.get(&args[1]);
    let b = ctx.get(&args[2]);
    let a = a.as_ref().map_or(&b""[..], |f| f.value());
    let b = b.as_ref().map_or(&b""[..], |f| f.value());
    let run = || lcs::lcs(a, b, &options, PROTO_MAX_BULK_LEN);
    let result = if a.len().saturating_mul(b.len()) > 1 << 20 && !ctx.in_exec() {
        crate::resp::offload(run)
    } else {
        run()
    }?;
    let mut reply = ctx.reply();
    match result {
        LcsReply::Sequence(seq) => reply.bulk(&seq),
        LcsReply::Length(len) => reply.int(len as i64),
        LcsReply::Matches {
            matches,
            len,
            with_match_len,
        } => {
            reply.map(2);
            reply.bulk(b"matches");
            reply.array(matches.len());
            for m in &matches {
                reply.array(if with_match_len { 3 } else { 2 });
                reply.array(2);
                reply.int(i64::from(m.a.0));
                reply.int(i64::from(m.a.1));
                reply.array(2);
                reply.int(i64::from(m.b.0));
                reply.int(i64::from(m.b.1));
                if with_match_len {
                    reply.int(i64::from(m.len));
                }
            }
            reply.bulk(b"len");
            reply.int(len as i64);
        }
    }
    Ok(())
}
