//! loadgen: drives simulated desktop sessions through deskrelay and reports HDR latency
//! histograms. This member of the workspace is filled by the load-generator work; until then
//! it says so and exits non-zero rather than pretend to measure anything.

fn main() {
    eprintln!("loadgen: not built yet; benchmark the relay with benches/relay_peers.sh");
    std::process::exit(2);
}
