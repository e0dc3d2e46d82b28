package appliance

import "github.com/eddybroker/eddy/appliance/broker"

// BrokerOf returns the Kafka API handler a node serves its listeners
// with, for FuzzServeFrame, which feeds it frames directly.
func BrokerOf(n *Node) *broker.Broker { return n.broker }
