runner {
  parallel = 0
}
