package extract

// The canonical entities. Column names here are what staging models read.
func init() {
	registerEntity(Entity{
		Name:  "orders",
		Doc:   "Order lines: one row per product line of an order. Negative quantity or a cancelled status reduces revenue.",
		Key:   []string{"order_id", "line_no"},
		Event: "order_ts",
		Columns: []Column{
			{Name: "order_id", Type: String, Required: true, Doc: "order (invoice) number"},
			{Name: "line_no", Type: Int, Doc: "line within the order; file sources use the file line when unmapped"},
			{Name: "customer_id", Type: String, Doc: "the customer's id in the source system; empty for anonymous sales"},
			{Name: "order_ts", Type: Timestamp, Required: true, Doc: "when the order was placed (UTC)"},
			{Name: "status", Type: String, Doc: "e.g. completed, cancelled, returned"},
			{Name: "product_id", Type: String, Doc: "product (SKU) code"},
			{Name: "product_name", Type: String},
			{Name: "category", Type: String, Doc: "product category for the product mix"},
			{Name: "quantity", Type: Decimal},
			{Name: "unit_price", Type: Decimal},
			{Name: "amount", Type: Decimal, Doc: "line net amount; quantity × unit_price when unmapped"},
			{Name: "cost", Type: Decimal, Doc: "line cost, for margin"},
			{Name: "currency", Type: String},
			{Name: "business_unit", Type: String},
			{Name: "channel", Type: String, Doc: "distributor, agent, dealer, store, direct, online…"},
			{Name: "updated_at", Type: Timestamp, Doc: "last change in the source; the incremental cursor"},
			{Name: "deleted", Type: Bool, Doc: "soft delete in the source"},
		},
	})
	registerEntity(Entity{
		Name:  "tickets",
		Doc:   "Service tickets from the helpdesk.",
		Key:   []string{"ticket_id"},
		Event: "created_at",
		Columns: []Column{
			{Name: "ticket_id", Type: String, Required: true},
			{Name: "customer_id", Type: String},
			{Name: "created_at", Type: Timestamp, Required: true},
			{Name: "resolved_at", Type: Timestamp, Doc: "null while open"},
			{Name: "status", Type: String, Doc: "open, pending, resolved, closed"},
			{Name: "priority", Type: String, Doc: "low, normal, high, urgent"},
			{Name: "category", Type: String, Doc: "e.g. complaint, question, repair, return"},
			{Name: "satisfaction", Type: Int, Doc: "1 (very unhappy) to 5 (very happy)"},
			{Name: "business_unit", Type: String},
			{Name: "channel", Type: String},
			{Name: "updated_at", Type: Timestamp},
			{Name: "deleted", Type: Bool},
		},
	})
	registerEntity(Entity{
		Name:  "contacts",
		Doc:   "People and companies from CRM exports and sign-ups; several sources may describe one customer.",
		Key:   []string{"contact_id"},
		Event: "created_at",
		Columns: []Column{
			{Name: "contact_id", Type: String, Required: true, Doc: "the contact's id in its source"},
			{Name: "customer_id", Type: String, Doc: "explicit external customer id, when the source knows it"},
			{Name: "match_key", Type: String, Doc: "any id that names one person across sources (a platform's person id); compared exactly"},
			{Name: "name", Type: String},
			{Name: "email", Type: String},
			{Name: "phone", Type: String},
			{Name: "company", Type: String},
			{Name: "customer_type", Type: String, Doc: "business or consumer"},
			{Name: "business_unit", Type: String},
			{Name: "channel", Type: String},
			{Name: "country", Type: String},
			{Name: "owner", Type: String, Doc: "e-mail of the account owner: early-warning alerts about the customer go there"},
			{Name: "created_at", Type: Timestamp},
			{Name: "last_contact_at", Type: Timestamp, Doc: "last touch (call, visit, mail) recorded in the CRM"},
			{Name: "updated_at", Type: Timestamp},
			{Name: "deleted", Type: Bool},
		},
	})
}
