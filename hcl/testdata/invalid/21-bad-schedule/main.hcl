policy "nightly" {
  schedule = "daily 25:00"
}
