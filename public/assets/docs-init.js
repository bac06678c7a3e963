// Renders /openapi.json with Swagger UI, served by the relay itself: no CDN, no validator badge.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#api',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: true,
});
