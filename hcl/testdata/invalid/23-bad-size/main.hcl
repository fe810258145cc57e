policy "nightly" {
  max_size = "10 parsecs"
}
