use nu_plugin::{MsgPackSerializer, serve_plugin};
use nu_plugin_hk::HkPlugin;

// Plans build and drop many small values (JSON facts, records, rows); mimalloc does that at about
// half the cost of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Later commands of the same nu (a deploy's plans and applies) reuse each host's SSH session.
    hk_core::transport::pool::enable(nu_plugin_hk::SESSION_IDLE);
    serve_plugin(&HkPlugin, MsgPackSerializer)
}
