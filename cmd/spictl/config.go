package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spi-streams/spi/admin/client"
)

// fileConfig is spictl.json, or the initial-credentials.json spid writes on first start
// (which calls the URL adminUrl and also holds a database user's username and password,
// which spictl ignores).
type fileConfig struct {
	URL        string `json:"url"`
	AdminURL   string `json:"adminUrl"`
	GroupID    string `json:"groupId"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
	CAFile     string `json:"caFile"`
}

// credentials resolves the server and API key, each from flags, else the environment, else
// the config file, and records the URL in o.baseURL.
func (c cli) credentials(o *options) (client.Config, error) {
	cfg := client.Config{
		BaseURL:    first(o.url, c.env("SPI_ADMIN_URL")),
		GroupID:    first(o.group, c.env("SPI_GROUP_ID")),
		PublicKey:  first(o.publicKey, c.env("SPI_PUBLIC_KEY")),
		PrivateKey: first(o.privateKey, c.env("SPI_PRIVATE_KEY")),
	}
	path := ""
	if cfg.BaseURL == "" || cfg.GroupID == "" || cfg.PublicKey == "" || cfg.PrivateKey == "" {
		var f fileConfig
		var err error
		if f, path, err = c.configFile(o.config); err != nil {
			return cfg, err
		}
		cfg.BaseURL = first(cfg.BaseURL, f.URL, f.AdminURL)
		cfg.GroupID = first(cfg.GroupID, f.GroupID)
		cfg.PublicKey = first(cfg.PublicKey, f.PublicKey)
		cfg.PrivateKey = first(cfg.PrivateKey, f.PrivateKey)
		o.fileCAFile = f.CAFile
	}
	cfg.BaseURL = first(cfg.BaseURL, client.DefaultBaseURL)
	if !strings.Contains(cfg.BaseURL, "://") {
		cfg.BaseURL = "http://" + cfg.BaseURL // as --admin-listen prints it: host:port
	}
	o.baseURL = cfg.BaseURL

	var missing, flags, vars, keys []string
	for _, m := range []struct{ val, what, flag, env, key string }{
		{cfg.GroupID, "project id", "--group", "SPI_GROUP_ID", "groupId"},
		{cfg.PublicKey, "public key", "--public-key", "SPI_PUBLIC_KEY", "publicKey"},
		{cfg.PrivateKey, "private key", "--private-key", "SPI_PRIVATE_KEY", "privateKey"},
	} {
		if m.val == "" {
			missing, flags, vars, keys = append(missing, m.what), append(flags, m.flag), append(vars, m.env), append(keys, m.key)
		}
	}
	if len(missing) > 0 {
		where := "a config file (--config or SPI_CONFIG)"
		if path != "" {
			where = path
		}
		return cfg, usagef("missing %s: give %s, or set %s, or put %s in %s (spid's <data-dir>/initial-credentials.json works as a config file)",
			strings.Join(missing, ", "), strings.Join(flags, ", "), strings.Join(vars, ", "), strings.Join(keys, ", "), where)
	}
	return cfg, nil
}

// configFile reads --config, else $SPI_CONFIG, else ~/.config/spi/spictl.json, which may be
// absent. It returns the path it looked at.
func (c cli) configFile(path string) (fileConfig, string, error) {
	var f fileConfig
	explicit := true
	if path == "" {
		path = c.env("SPI_CONFIG")
	}
	if path == "" {
		explicit = false
		dir := c.env("XDG_CONFIG_HOME")
		if dir == "" {
			home := c.env("HOME")
			if home == "" {
				return f, "", nil
			}
			dir = filepath.Join(home, ".config")
		}
		path = filepath.Join(dir, "spi", "spictl.json")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return f, path, nil
	}
	if err != nil {
		return f, path, fmt.Errorf("config file: %w", err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, path, fmt.Errorf("config file %s: %w", path, err)
	}
	return f, path, nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
