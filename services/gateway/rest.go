package gateway

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
)

// registerREST maps every public API to REST. APIs whose service is not
// built yet answer 501 (gRPC Unimplemented), never made-up data.
var registerREST = []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
	gatewayv1.RegisterAlertServiceHandler,
	gatewayv1.RegisterAuthServiceHandler,
	gatewayv1.RegisterUserServiceHandler,
	gatewayv1.RegisterKeyServiceHandler,
	gatewayv1.RegisterAuditServiceHandler,
	monitorv1.RegisterIncidentServiceHandler,
	monitorv1.RegisterSilenceServiceHandler,
	monitorv1.RegisterOnCallServiceHandler,
	monitorv1.RegisterEscalationServiceHandler,
	monitorv1.RegisterInhibitionServiceHandler,
	deployv1.RegisterAppServiceHandler,
	deployv1.RegisterClusterServiceHandler,
	repairv1.RegisterRepairServiceHandler,
	notifyv1.RegisterChannelServiceHandler,
	notifyv1.RegisterRouteServiceHandler,
	analysisv1.RegisterAnalysisServiceHandler,
}
