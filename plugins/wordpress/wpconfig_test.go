package wordpress

import (
	"strings"
	"testing"
)

func TestParseWPConfigReadsEverySpelling(t *testing.T) {
	tests := []struct {
		name, src string
		key, want string
	}{
		{"stock sample", "<?php\ndefine( 'DB_NAME', 'blog' );\n", keyDBName, "blog"},
		{"no spaces", "<?php define('DB_NAME','blog');", keyDBName, "blog"},
		{"double quotes", `<?php define("DB_NAME", "blog");`, keyDBName, "blog"},
		{"mixed quotes and spacing", "<?php\n  define (\t\"DB_USER\" ,   'bob'  ) ;", keyDBUser, "bob"},
		{"escaped single quote", `<?php define('DB_PASSWORD', 'it\'s \\ fine');`, keyDBPass, `it's \ fine`},
		{"backslash kept in single quotes", `<?php define('DB_PASSWORD', 'a\nb');`, keyDBPass, `a\nb`},
		{"double-quoted escapes", `<?php define('DB_PASSWORD', "q\"\$x\\y\x41\101\u{263A}");`, keyDBPass, "q\"$x\\yAA☺"},
		{"comment between tokens", "<?php define( /* name */ 'DB_NAME', // eol\n 'blog' # hash\n );", keyDBName, "blog"},
		{"commented out define is ignored", "<?php\n// define('DB_NAME', 'old');\n# define('DB_NAME', 'older');\n/* define('DB_NAME', 'oldest'); */\ndefine('DB_NAME', 'blog');", keyDBName, "blog"},
		{"first define wins", "<?php define('DB_NAME', 'a'); define('DB_NAME', 'b');", keyDBName, "a"},
		{"concatenation", "<?php define('DB_NAME', 'wp' . \"_\" . 'blog');", keyDBName, "wp_blog"},
		{"host with port", "<?php define('DB_HOST', '127.0.0.1:3307');", keyDBHost, "127.0.0.1:3307"},
		{"host with socket", "<?php define('DB_HOST', 'localhost:/run/mysqld/mysqld.sock');", keyDBHost, "localhost:/run/mysqld/mysqld.sock"},
		{"charset", "<?php define( 'DB_CHARSET', 'utf8mb4' );", keyCharset, "utf8mb4"},
		{"table prefix", "<?php $table_prefix = 'wp_';", keyPrefix, "wp_"},
		{"table prefix double quotes and spaces", "<?php $table_prefix   =\t\"blog_\"  ;", keyPrefix, "blog_"},
		{"last table prefix wins", "<?php $table_prefix = 'a_'; $table_prefix = 'b_';", keyPrefix, "b_"},
		{"string with a semicolon and parenthesis", "<?php define('DB_PASSWORD', 'x;y)z');", keyDBPass, "x;y)z"},
		{"namespaced define", `<?php \define('DB_NAME', 'blog');`, keyDBName, "blog"},
		{"define in a string is not a define", `<?php $x = "define('DB_NAME', 'no')"; define('DB_NAME', 'blog');`, keyDBName, "blog"},
		{"html before php", "<html>define('DB_NAME', 'no')</html><?php define('DB_NAME', 'blog'); ?> trailing", keyDBName, "blog"},
		{"heredoc skipped", "<?php $x = <<<EOT\ndefine('DB_NAME', 'no');\nEOT;\ndefine('DB_NAME', 'blog');", keyDBName, "blog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseWPConfig("/site/wp-config.php", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Need(tt.key); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{keyDBName: c.DBName, keyDBUser: c.DBUser, keyDBPass: c.DBPassword, keyDBHost: c.DBHost, keyCharset: c.DBCharset, keyPrefix: c.TablePrefix}[tt.key]
			if got != tt.want {
				t.Fatalf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestParseWPConfigNamesTheLineItCannotRead(t *testing.T) {
	tests := []struct {
		name, src, key string
		want           []string
	}{
		{"getenv", "<?php\ndefine('DB_NAME', 'blog');\ndefine('DB_PASSWORD', getenv('WP_DB_PASSWORD'));\n", keyDBPass, []string{"/site/wp-config.php line 3", "DB_PASSWORD"}},
		{"constant", "<?php\n\n\ndefine('DB_HOST', MY_HOST);", keyDBHost, []string{"line 4", "DB_HOST"}},
		{"interpolation", "<?php\ndefine('DB_USER', \"user_$suffix\");", keyDBUser, []string{"line 2", "DB_USER"}},
		{"prefix from a variable", "<?php\n$table_prefix = $other;", keyPrefix, []string{"line 2", "$table_prefix"}},
		{"missing", "<?php\ndefine('DB_NAME', 'x');", keyDBPass, []string{"/site/wp-config.php", "no define('DB_PASSWORD'"}},
		{"missing prefix", "<?php\ndefine('DB_NAME', 'x');", keyPrefix, []string{"no $table_prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseWPConfig("/site/wp-config.php", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Need(tt.key)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// A password never appears in an error, even on its own line.
	c, _ := ParseWPConfig("/x", []byte("<?php define('DB_PASSWORD', 'secret' . getenv('X'));"))
	if err := c.Need(keyDBPass); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v", err)
	}
}

func TestParseWPConfigFailsOnBrokenSyntaxWithLine(t *testing.T) {
	for src, want := range map[string]string{
		"<?php\n\ndefine('DB_NAME', 'blog);\n": "line 3: unterminated string",
		"<?php\n/* never closed\n":             "line 2: unterminated /* comment",
		"<?php\n\n\n\"open":                    "line 4: unterminated string",
	} {
		_, err := ParseWPConfig("/site/wp-config.php", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "/site/wp-config.php: "+want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
}

func TestParseDBHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"localhost", "/sock"},
		{"", "/sock"},
		{"localhost:3307", "/sock"},
		{"127.0.0.1", "127.0.0.1:3306"},
		{"db.example.org:3307", "db.example.org:3307"},
		{"localhost:/var/run/mysqld/other.sock", "/var/run/mysqld/other.sock"},
		{"/tmp/mysql.sock", "/tmp/mysql.sock"},
		{"[::1]:3310", "[::1]:3310"},
		{"[::1]", "[::1]:3306"},
		{"::1", "[::1]:3306"},
	}
	for _, tt := range tests {
		got, err := ParseDBHost(tt.in, "/sock")
		if err != nil || got != tt.want {
			t.Errorf("ParseDBHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"host:99999", "host:x", "[::1"} {
		if _, err := ParseDBHost(bad, "/sock"); err == nil {
			t.Errorf("ParseDBHost(%q): no error", bad)
		}
	}
}

func TestScopeSelectsTheSitesTables(t *testing.T) {
	own := []string{"wp_options", "wp_posts", "wp_users", "wp_2_options", "wp_2_posts"}
	f, shared := scope("blog", "wp_", own)
	if shared || len(f.IncludeTables) != 0 {
		t.Fatalf("a database of one site is dumped whole: %+v %v", f, shared)
	}
	mixed := append([]string{"wp_shop_options", "wp_shop_posts", "other"}, own...)
	f, shared = scope("blog", "wp_", mixed)
	if !shared {
		t.Fatal("not shared")
	}
	for tbl, want := range map[string]bool{"wp_options": true, "wp_2_posts": true, "wp_shop_posts": false, "other": false} {
		if got := f.Table("blog", tbl); got != want {
			t.Errorf("%s selected = %v, want %v", tbl, got, want)
		}
	}
	f, _ = scope("blog", "wp_shop_", mixed)
	if !f.Table("blog", "wp_shop_posts") || f.Table("blog", "wp_posts") {
		t.Errorf("the longer prefix: %+v", f)
	}
}
