package api

// UndocumentedRoutes is exported for the OpenAPI test.
var UndocumentedRoutes = undocumentedRoutes
