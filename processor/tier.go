package processor

// Tier is a processor size (spec §10: SP2 … SP50). spid runs every tier on its own machine;
// a tier sets the memory limit of the processor's operator state (80 % of the tier's RAM) and
// orders tiers for the workspace's maxTierSize.
type Tier struct {
	Name string
	// RAM is the tier's memory in bytes.
	RAM int64
	// MaxParallelism is the tier's parallelism limit.
	MaxParallelism int
	// MaxKafkaPartitions is the most Kafka partitions a $source of this tier reads (spec §9
	// and §10); 0 is unlimited.
	MaxKafkaPartitions int
}

const gib = 1 << 30

// Tiers lists the tiers from smallest to largest (spec §10).
var Tiers = []Tier{
	{"SP2", gib / 2, 1, 32},
	{"SP5", 1 * gib, 2, 64},
	{"SP10", 2 * gib, 8, 0},
	{"SP30", 8 * gib, 16, 0},
	{"SP50", 32 * gib, 64, 0},
}

// TierByName returns the tier and its rank (0 = smallest).
func TierByName(name string) (Tier, int, bool) {
	for i, t := range Tiers {
		if t.Name == name {
			return t, i, true
		}
	}
	return Tier{}, -1, false
}

// StateLimit is the operator state a processor of this tier may hold: 80 % of its RAM
// (spec §9, "State size").
func (t Tier) StateLimit() int64 { return t.RAM / 10 * 8 }

func checkTier(field, name string) (Tier, *Error) {
	t, _, ok := TierByName(name)
	if !ok {
		return t, Errorf(CodeStreamProcessorInvalidOption, "%s: %q is not a tier: use SP2, SP5, SP10, SP30 or SP50", field, name)
	}
	return t, nil
}

func tierErr(tier, max string) *Error {
	return Errorf(CodeStreamProcessorInvalidOption, "tier: %s is larger than the workspace's maxTierSize %s", tier, max)
}
