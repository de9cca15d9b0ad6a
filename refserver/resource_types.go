package refserver

import (
	"fmt"
	"slices"
	"strings"
)

// r4ResourceTypes are the 146 concrete resource types of FHIR R4 (4.0.1): what an export's _type may name.
// A type with no data exports no file; a name outside this list and the dataset is not a resource type this
// server supports. (The list is that of golang-fhir-models' ResourceType, without Resource and
// DomainResource; the server itself stays standard-library only.)
var r4ResourceTypes = strings.Fields(`
	Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse AuditEvent Basic
	Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan CareTeam CatalogEntry
	ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression CodeSystem Communication
	CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent Contract Coverage
	CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric
	DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis
	Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence
	EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal GraphDefinition Group
	GuidanceResponse HealthcareService ImagingStudy Immunization ImmunizationEvaluation
	ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice Library Linkage List Location Measure
	MeasureReport Media Medication MedicationAdministration MedicationDispense MedicationKnowledge
	MedicationRequest MedicationStatement MedicinalProduct MedicinalProductAuthorization
	MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
	MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
	MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition MessageHeader
	MolecularSequence NamingSystem NutritionOrder Observation ObservationDefinition OperationDefinition
	OperationOutcome Organization OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation
	Person PlanDefinition Practitioner PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse
	RelatedPerson RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject
	RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen SpecimenDefinition
	StructureDefinition StructureMap Subscription Substance SubstanceNucleicAcid SubstancePolymer
	SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification SupplyDelivery
	SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet VerificationResult
	VisionPrescription
`)

// supportedTypes checks an export's _type against the resource types the server knows. Unknown ones are an
// error naming them, or, when the client asked for lenient handling (Prefer: handling=lenient, HL7 Bulk Data
// IG: the server MAY then process the request instead of answering an error), dropped and returned as such.
func (s *Server) supportedTypes(types []string, lenient bool) (supported, dropped []string, err error) {
	var known, unknown []string
	for _, t := range types {
		if slices.Contains(r4ResourceTypes, t) || slices.Contains(s.dataset.types, t) {
			known = append(known, t)
		} else {
			unknown = append(unknown, t)
		}
	}
	switch {
	case len(unknown) == 0:
		return types, nil, nil
	case lenient:
		return append([]string{}, known...), unknown, nil // empty, not nil: nil would export every type
	}
	// The answer names what it refuses, bounded: a kick-off of megabytes of _type gets no megabytes back.
	named := unknown[:min(len(unknown), 5)]
	for i, t := range named {
		if len(t) > 64 {
			named[i] = strings.ToValidUTF8(t[:64], "") + "…"
		}
	}
	if len(unknown) > len(named) {
		named = append(named, fmt.Sprintf("and %d more", len(unknown)-len(named)))
	}
	return nil, nil, fmt.Errorf("_type %s: not a resource type this server supports (FHIR R4); send Prefer: handling=lenient to skip unknown types", strings.Join(named, ", "))
}
