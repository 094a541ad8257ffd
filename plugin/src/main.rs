use nu_plugin::{MsgPackSerializer, serve_plugin};
use nu_plugin_hk::HkPlugin;

// Plans build and drop many small values (JSON facts, records, rows); mimalloc does that at about
// half the cost of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    serve_plugin(&HkPlugin, MsgPackSerializer)
}
