use nu_plugin::{MsgPackSerializer, serve_plugin};
use nu_plugin_hk::HkPlugin;

fn main() {
    serve_plugin(&HkPlugin, MsgPackSerializer)
}
