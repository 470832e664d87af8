package admin

// UndocumentedRoutes is exported for the OpenAPI test.
var UndocumentedRoutes = undocumentedRoutes
