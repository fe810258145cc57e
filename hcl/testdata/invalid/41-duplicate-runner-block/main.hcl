runner {
  parallel = 2
}

runner {
  parallel = 3
}
