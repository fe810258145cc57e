# bench/report.awk: turns bench/run's measurements into the results.
#
#   awk -F, -v mode=median -f report.awk raw.csv   | ...           one row per measurement, over repeated runs
#   awk -F, -v mode=ratios -f report.awk medians   > results.csv   adds the ratio rows
#   awk -F, -v mode=table -v ds=NAME -f report.awk results.csv      one dataset's table and targets
#   awk -F, -v mode=json -f report.awk results.csv                  the rows as a JSON array
#
# Columns: dataset,step,tool,status,wall_s,cpu_s,user_s,sys_s,peak_rss_mib,
# tree_pss_mib,repo_mib,repo_bytes,verify,note. status is "ok", "ratio",
# "n/a", "not available yet" or "failed ..."; numbers are empty unless ok or
# ratio. In a ratio row (tool runner/restic or runner/borg) wall_s, cpu_s,
# peak_rss_mib and repo_mib hold runner's value divided by the other
# tool's (below 1: runner is better); the memory ratio uses the larger of
# each row's peak_rss_mib and tree_pss_mib.

function num(x) { return x != "" }
function rss(i,   a, b) { a = F[i, 9]; b = F[i, 10]; if (a == "") return b; if (b == "" || a + 0 >= b + 0) return a; return b }
function ratio(a, b) { if (a == "" || b == "" || b + 0 == 0) return ""; return sprintf("%.2f", a / b) }
function find(d, s, t,   i) { for (i = 1; i <= n; i++) if (F[i, 1] == d && F[i, 2] == s && F[i, 3] == t) return i; return 0 }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function jnum(s) { return s == "" ? "null" : s + 0 }

BEGIN { nsteps = split("first backup,no change,1% changed,restore", STEPS, ",") }

NR == 1 { header = $0; next }
{
  n++
  for (k = 1; k <= 14; k++) F[n, k] = $k
  if (!(($1) in seen)) { seen[$1] = 1; dss[++nds] = $1 }
}

END {
  if (mode == "median") median()
  else if (mode == "ratios") ratios()
  else if (mode == "table") table(ds)
  else if (mode == "json") json()
}

function ratios(   d, s, i, r, o, t, others, st, note, line) {
  print header
  for (d = 1; d <= nds; d++) for (s = 1; s <= nsteps; s++) {
    for (i = 1; i <= n; i++) if (F[i, 1] == dss[d] && F[i, 2] == STEPS[s]) {
      line = F[i, 1]; for (k = 2; k <= 14; k++) line = line "," F[i, k]; print line
    }
    r = find(dss[d], STEPS[s], "runner")
    if (!r) continue
    split("restic borg", others, " ")
    for (t = 1; t <= 2; t++) {
      o = find(dss[d], STEPS[s], others[t])
      if (!o) continue
      if (F[r, 4] == "ok" && F[o, 4] == "ok") { st = "ratio"; note = "" }
      else { st = "n/a"; note = (F[r, 4] != "ok") ? "runner: " F[r, 4] : others[t] ": " F[o, 4] }
      if (st == "ratio")
        printf "%s,%s,runner/%s,%s,%s,%s,,,%s,,%s,,,%s\n", dss[d], STEPS[s], others[t], st,
          ratio(F[r, 5], F[o, 5]), ratio(F[r, 6], F[o, 6]), ratio(rss(r), rss(o)), ratio(F[r, 11], F[o, 11]), note
      else
        printf "%s,%s,runner/%s,%s,,,,,,,,,,%s\n", dss[d], STEPS[s], others[t], st, note
    }
  }
}

# median: the rows of one dataset, step and tool (BENCH_REPEAT runs of
# each) become one, in the order first seen. Each number is the median of
# that column over the runs that succeeded (each column on its own, so
# wall and CPU may come from different runs); a failed run makes the row
# failed, and a verification that was not ok wins over ones that were.
function median(   i, k, key, keys, nk, c, m, vals, nv, one, line, st, ver, note, runs) {
  print header
  for (i = 1; i <= n; i++) {
    key = F[i, 1] SUBSEP F[i, 2] SUBSEP F[i, 3]
    if (!(key in rows)) { keys[++nk] = key; rows[key] = "" }
    rows[key] = rows[key] " " i
  }
  for (k = 1; k <= nk; k++) {
    runs = split(substr(rows[keys[k]], 2), m, " ")
    st = "ok"; ver = ""; note = ""
    for (i = 1; i <= runs; i++) {
      if (F[m[i], 4] != "ok" && st == "ok") st = F[m[i], 4]
      if (F[m[i], 13] != "" && (ver == "" || ver == "ok")) ver = F[m[i], 13]
      if (F[m[i], 14] != "" && note == "") note = F[m[i], 14]
    }
    if (runs > 1) note = (note == "" ? "" : note "; ") "median of " runs " runs"
    line = F[m[1], 1] "," F[m[1], 2] "," F[m[1], 3] "," st
    for (c = 5; c <= 12; c++) {
      nv = 0; delete vals
      if (st == "ok") for (i = 1; i <= runs; i++) if (F[m[i], c] != "") { vals[++nv] = F[m[i], c] + 0; one = F[m[i], c] }
      line = line "," (nv > 1 ? mid(vals, nv, c == 12) : nv ? one : "")
    }
    print line "," ver "," note
  }
}

# mid returns the median of v[1..nv] (sorted here), as an integer for byte
# counts; an even count averages the middle two.
function mid(v, nv, whole,   i, j, t, x) {
  for (i = 2; i <= nv; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
  x = (nv % 2) ? v[(nv + 1) / 2] : (v[nv / 2] + v[nv / 2 + 1]) / 2
  return whole ? sprintf("%d", x) : sprintf("%.2f", x)
}

function fmt(x, p) { return x == "" ? "-" : sprintf("%." p "f", x) }

function table(d,   s, i, v) {
  printf "%-13s %-16s %9s %9s %13s %13s %10s  %s\n", "step", "tool", "wall s", "CPU s", "peak RSS MiB", "tree PSS MiB", "repo MiB", "verify"
  for (s = 1; s <= nsteps; s++) {
    for (i = 1; i <= n; i++) {
      if (F[i, 1] != d || F[i, 2] != STEPS[s]) continue
      if (F[i, 4] == "ok")
        printf "%-13s %-16s %9s %9s %13s %13s %10s  %s\n", F[i, 2], F[i, 3], fmt(F[i, 5], 2), fmt(F[i, 6], 2),
          fmt(F[i, 9], 1), fmt(F[i, 10], 1), fmt(F[i, 11], 1), F[i, 13]
      else if (F[i, 4] == "ratio")
        printf "%-13s %-16s %9s %9s %13s %13s %10s\n", F[i, 2], F[i, 3], fmt(F[i, 5], 2), fmt(F[i, 6], 2),
          fmt(F[i, 9], 2), "", fmt(F[i, 11], 2)
      else if (F[i, 4] == "n/a")
        printf "%-13s %-16s %9s   (%s)\n", F[i, 2], F[i, 3], "n/a", F[i, 14]
      else if (F[i, 3] == "runner")
        printf "%-13s %-16s runner: %s%s\n", F[i, 2], F[i, 3], F[i, 4], (F[i, 14] != "" ? " (" F[i, 14] ")" : "")
      else
        printf "%-13s %-16s %s%s\n", F[i, 2], F[i, 3], F[i, 4], (F[i, 14] != "" ? " (" F[i, 14] ")" : "")
    }
  }
  print ""
  print "Targets (issue 3; runner against the others on this dataset):"
  target(d, "first backup", "borg", 1, "first backup faster than borg")
  target(d, "first backup", "restic", 1 / 3, "first backup at least 3x faster than restic")
  target(d, "first backup", "tar|zstd -1 -T2", 1.5, "first backup within 1.5x of tar|zstd -1 -T2")
  target(d, "no change", "restic", 1 / 3, "no-change backup at least 3x faster than restic")
  target(d, "no change", "borg", 1, "no-change backup faster than borg")
  target(d, "no change", "find -printf", 3, "no-change backup within 3x of find -printf")
  target(d, "restore", "borg", 1, "restore faster than borg")
  target(d, "restore", "cp -a", 2, "restore within 2x of cp -a")
  rsstarget(d)
  v = find(d, "restore", "runner")
  if (v && F[v, 13] != "" && F[v, 13] != "ok")
    print "  WARNING: runner's restore did not give back the data (" F[v, 13] "): its numbers do not measure a correct backup."
}

# target prints whether runner's wall time in step is at most factor times
# other's (strictly less when factor is 1: "faster than").
function target(d, step, other, factor, what,   r, o, met, res) {
  r = find(d, step, "runner"); o = find(d, step, other)
  if (!r || !o) return
  if (F[r, 4] != "ok") res = "n/a (runner: " F[r, 4] ")"
  else if (F[o, 4] != "ok") res = "n/a (" other ": " F[o, 4] ")"
  else {
    met = (factor == 1) ? (F[r, 5] + 0 < F[o, 5] + 0) : (F[r, 5] + 0 <= factor * F[o, 5])
    res = sprintf("runner %.2f s, %s %.2f s (limit %.2f s): %s", F[r, 5], other, F[o, 5], factor * F[o, 5], met ? "met" : "NOT met")
  }
  printf "  %-50s %s\n", what, res
}

function rsstarget(d,   s, r, o, res, bad, any) {
  res = ""; bad = 0; any = 0
  for (s = 1; s <= nsteps; s++) {
    r = find(d, STEPS[s], "runner"); o = find(d, STEPS[s], "borg")
    if (!r || !o) continue
    if (F[r, 4] != "ok") { res = "n/a (runner: " F[r, 4] ")"; break }
    if (F[o, 4] != "ok") continue
    any = 1
    if (rss(r) + 0 > rss(o) + 0) { bad = 1; res = res sprintf(" %s: %.1f > %.1f MiB;", STEPS[s], rss(r), rss(o)) }
  }
  if (res == "" && any) res = "met"
  else if (bad) res = "NOT met:" res
  if (res != "") printf "  %-50s %s\n", "peak memory at most borg's in every step", res
}

function json(   i, k, names, first) {
  split("dataset,step,tool,status,wall_s,cpu_s,user_s,sys_s,peak_rss_mib,tree_pss_mib,repo_mib,repo_bytes,verify,note", names, ",")
  printf "["
  for (i = 1; i <= n; i++) {
    printf "%s\n  {", (i > 1 ? "," : "")
    for (k = 1; k <= 14; k++) {
      if (k >= 5 && k <= 12) printf "%s\"%s\": %s", (k > 1 ? ", " : ""), names[k], jnum(F[i, k])
      else printf "%s\"%s\": %s", (k > 1 ? ", " : ""), names[k], jstr(F[i, k])
    }
    printf "}"
  }
  print "\n]"
}
