package function

import (
	"context"

	"github.com/dronetrack/dronetrack/core/store"
)

// The store calls of channel delivery (notify.go), bounded like the others
// (storedeadline.go).

func (d *deadlineStore) Channels(ctx context.Context, tenantID string) ([]store.Channel, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.Channels(ctx, tenantID)
}

func (d *deadlineStore) ChannelEventDeliveries(ctx context.Context, tenantID, channelID, eventID string) ([]store.Delivery, error) {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.ChannelEventDeliveries(ctx, tenantID, channelID, eventID)
}

func (d *deadlineStore) AddChannelDelivery(ctx context.Context, rec store.Delivery) error {
	ctx, cancel := d.bound(ctx)
	defer cancel()
	return d.st.AddChannelDelivery(ctx, rec)
}
