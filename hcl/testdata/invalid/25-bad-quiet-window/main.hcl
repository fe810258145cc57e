policy "nightly" {
  schedule = "daily 03:00"
  quiet    = ["22:00-25:00"]
}
