policy "nightly" {
  keep_daily = 7
  catch_up   = "3d"
}
