fn main() -> anyhow::Result<()> {
    anyhow::bail!("collector: not built yet")
}
