package commands

import (
	"context"
	"runtime"

	"github.com/spi-streams/spi/wire"
)

// compatVersion is the MongoDB server version whose wire behaviour spid follows (wire version
// 21). mongosh prints it in its greeting; spid's own version is reported beside it.
var compatVersion = [4]int32{7, 0, 0, 0}

// buildInfo describes the server. It has no "ferretdb" or "documentdb" markers, so mongosh shows
// no non-genuine-server banner.
func buildInfo(_ context.Context, call *Call, r *Reply) error {
	r.String("version", "7.0.0")
	r.String("gitVersion", "spi")
	r.Array("versionArray")
	for i, v := range compatVersion {
		r.Int32(arrayKey(i), v)
	}
	r.EndDoc()
	r.Int32("bits", 64)
	r.Bool("debug", false)
	r.Int32("maxBsonObjectSize", wire.MaxBSONObjectSize)
	r.Strings("modules", []string{"streams"})
	r.Strings("storageEngines", []string{})
	r.Doc("buildEnvironment")
	r.String("distmod", "spi")
	r.String("target_os", runtime.GOOS)
	r.String("target_arch", runtime.GOARCH)
	r.String("go_version", runtime.Version())
	r.EndDoc()
	r.String("spiVersion", call.Server.opts.Version)
	return nil
}
