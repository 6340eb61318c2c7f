package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `make run` on an empty data directory builds and starts spid, prints the owner API key, the
// admin password and a spictl and a mongosh command, and both commands work exactly as printed.
func TestMakeRunPrintsWorkingCommand(t *testing.T) {
	cmd := exec.Command("make", "--no-print-directory", "run")
	cmd.Dir = ".."
	// Port 0: any free port, so the test never collides with a spid already on 27017.
	cmd.Env = append(os.Environ(), "SPI_LISTEN=127.0.0.1:0", "SPI_ADMIN_LISTEN=127.0.0.1:0", "SPI_DATA_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	var out lockedBuffer
	printed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = out.Write(append(sc.Bytes(), '\n'))
			if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "mongosh ") {
				printed <- line
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-printed:
	case err := <-exited:
		t.Fatalf("make run exited early: %v\n%s", err, stderr.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("make run printed no mongosh command\n%s", stderr.String())
	}

	banner := out.String()
	key := regexp.MustCompile(`Owner API key: +public ([a-z]{8}) +private ([0-9a-f-]{36})`).FindStringSubmatch(banner)
	pw := regexp.MustCompile(`Database user: +admin / (\S+) \(atlasAdmin\)`).FindStringSubmatch(banner)
	if key == nil || pw == nil {
		t.Fatalf("the first start did not print the owner key and the admin password:\n%s", banner)
	}
	var spictl string
	for _, l := range strings.Split(banner, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "bin/spictl ") {
			spictl = l
		}
	}
	if spictl == "" {
		t.Fatalf("no spictl command was printed:\n%s", banner)
	}
	// Run the spictl command exactly as printed, from the repository root as make run was.
	sh := exec.Command("sh", "-c", spictl)
	sh.Dir = ".."
	res, err := sh.CombinedOutput()
	if err != nil || !strings.Contains(string(res), "default") {
		t.Fatalf("the printed spictl command failed: %v\n%s", err, res)
	}

	// Run the printed mongosh command as printed (mongosh being the pinned one), adding only
	// what makes it non-interactive.
	if !strings.Contains(line, "--password '"+pw[1]+"'") {
		t.Fatalf("the mongosh command does not log in as the admin user: %q", line)
	}
	sh = exec.Command("sh", "-c", mongoshPath(t)+strings.TrimPrefix(line, "mongosh")+` --quiet --eval "db.runCommand({ping: 1}).ok"`)
	sh.Env = mongoshEnv(t)
	res, err = sh.CombinedOutput()
	if err != nil || strings.TrimSpace(string(res)) != "1" {
		t.Fatalf("the printed mongosh command failed: %v\n%s", err, res)
	}

	// Ctrl-C in the terminal: spid shuts down cleanly.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-exited:
		// make itself reports the interrupt (exit status 2); spid's own stop is checked below.
		t.Logf("make run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("make run did not stop on SIGINT")
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("spid did not report a clean stop:\n%s", stderr.String())
	}
}
