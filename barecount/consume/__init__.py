"""Getting numbers out: exports, the dataset catalog, the KPI activation API's reads and OpenLineage events."""
