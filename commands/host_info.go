package commands

import (
	"context"
	"os"
	"runtime"
	"strings"
	"time"
)

// hostInfo describes the machine spid runs on, in mongod's reply shape (MongoDB manual,
// "hostInfo"): system {currentTime, hostname, cpuAddrSize, numCores, cpuArch}, os {type, name},
// extra {}. Only what spid can truthfully say is there: no memory or NUMA figures, which a
// workspace's clients have no use for. Compass and the VS Code extension (through
// mongodb-data-service's instance()) ask for it on connect.
func hostInfo(_ context.Context, _ *Call, r *Reply) error {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	r.Doc("system")
	r.Time("currentTime", time.Now())
	r.String("hostname", host)
	r.Int32("cpuAddrSize", 64)
	r.Int32("numCores", int32(runtime.NumCPU()))
	r.String("cpuArch", cpuArch())
	r.EndDoc()
	r.Doc("os")
	r.String("type", osType())
	r.String("name", osType())
	r.EndDoc()
	r.Doc("extra")
	r.EndDoc()
	return nil
}

// cpuArch names the architecture as mongod does (uname's machine name).
func cpuArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// osType is mongod's os.type: "Linux", "Darwin", "Windows", ...
func osType() string {
	if runtime.GOOS == "" {
		return "unknown"
	}
	return strings.ToUpper(runtime.GOOS[:1]) + runtime.GOOS[1:]
}
