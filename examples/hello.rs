//! Every rank says hello: `pirun -n 4 target/release/examples/hello`.

fn main() -> pirun::Result<()> {
    let world = pirun::init()?;
    let host = world.host_of(world.rank()).unwrap_or("?").to_string();
    println!(
        "hello from rank {} of {} on {host}",
        world.rank(),
        world.size()
    );
    Ok(())
}
