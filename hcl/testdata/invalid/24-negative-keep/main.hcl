policy "nightly" {
  keep_daily = -1
}
