fn main() -> anyhow::Result<()> {
    anyhow::bail!("subscriber: not built yet")
}
