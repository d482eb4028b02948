/* The net probe sites: messages and connections.
 *
 * Built with the frame pointer kept (CMakeLists.txt), as bitcoind's big
 * networking frames are %rbp-based: the volatile copies below, like the
 * locals of Core's ProcessMessages, are read from the frame
 * ("-8@-40(%rbp)"), while values that outlive a call sit in callee-saved
 * registers and objects are read through pointers ("8@16(%rbx)").
 */
#include "node.h"
#include "node_stats.h"

bool node_receive_message(struct peer *peer, const struct net_message *msg)
{
	volatile int64_t peer_id = peer->id;
	const char *volatile addr = peer->addr;
	const char *volatile conn_type = peer->conn_type;
	const char *volatile type = msg->type;
	bool fired;

	node_count(&node_stats.messages, 1);
	fired = TRACEPOINT(net, inbound_message, peer_id, addr, conn_type, type, msg->size, msg->data);
	peer->bytes_recv += msg->size;
	node_count(&node_stats.bytes, msg->size);
	return fired;
}

bool node_send_message(struct peer *peer, const struct net_message *msg)
{
	const uint64_t size = msg->size;
	const int64_t peer_id = peer->id;
	const char *const type = msg->type;
	bool fired;

	node_count(&node_stats.messages, 1);
	fired = TRACEPOINT(net, outbound_message, peer_id, peer->addr, peer->conn_type, type, size,
			   msg->data);
	peer->bytes_sent += size;
	node_count(&node_stats.bytes, size + (uint64_t)peer_id);
	return fired;
}

bool node_accept_inbound(const struct peer *peer, uint64_t existing)
{
	const uint32_t network = peer->network;
	volatile uint64_t count = existing;
	bool fired;

	node_count(&node_stats.peers, network);
	fired = TRACEPOINT(net, inbound_connection, peer->id, peer->addr, peer->conn_type, network,
			   count);
	node_count(&node_stats.peers, 1);
	return fired;
}

bool node_open_outbound(const struct peer *peer, uint64_t existing)
{
	const uint32_t network = peer->network;
	const int64_t peer_id = peer->id;
	bool fired;

	node_count(&node_stats.peers, existing);
	fired = TRACEPOINT(net, outbound_connection, peer_id, peer->addr, peer->conn_type, network,
			   existing);
	node_count(&node_stats.peers, network + 1);
	return fired;
}

bool node_close_connection(const struct peer *peer)
{
	bool fired = TRACEPOINT(net, closed_connection, peer->id, peer->addr, peer->conn_type,
				peer->network, peer->time_connected);

	node_count(&node_stats.peers, (uint64_t)-1);
	return fired;
}

bool node_evict_inbound(const struct peer *peer)
{
	volatile int64_t since = peer->time_connected;
	const char *const addr = peer->addr;
	bool fired;

	node_count(&node_stats.peers, (uint64_t)-2);
	fired = TRACEPOINT(net, evicted_inbound_connection, peer->id, addr, peer->conn_type,
			   peer->network, since);
	return fired;
}

bool node_misbehaving(struct peer *peer, const char *message)
{
	/* Through a lookup, as Core's Misbehaving finds the peer's state. */
	const struct peer *found = node_find_peer(peer);
	bool fired = TRACEPOINT(net, misbehaving_connection, found->id, message);

	node_count(&node_stats.misbehaving, (uint64_t)found->id);
	return fired;
}
