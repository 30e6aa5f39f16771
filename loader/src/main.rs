fn main() -> anyhow::Result<()> {
    anyhow::bail!("loader: not built yet")
}
