policy "nightly" {
  schedule = "daily 03:00"
  catch_up = "3x"
}
