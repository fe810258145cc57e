source "files" "docs" {
  paths = {dir = "/srv"}
}
