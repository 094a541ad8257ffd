# Config of the project-local shell started by bin/hk-nu.
$env.config.show_banner = false
use hk
