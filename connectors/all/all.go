// Package all registers every connector spid ships; import it for its side effect.
package all

import (
	// Each package registers its connection type in connectors' table.
	_ "github.com/spi-streams/spi/connectors/inline"
	_ "github.com/spi-streams/spi/connectors/kafka"
	_ "github.com/spi-streams/spi/connectors/mongodb"
	_ "github.com/spi-streams/spi/connectors/sample"
	_ "github.com/spi-streams/spi/connectors/testlog"
)
